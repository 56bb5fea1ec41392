"""Store mixin for worker run records: the last run of each job, as JSON in the `meta` table."""

from __future__ import annotations

from feedpipe.model import RunRecord
from feedpipe.store.meta import MetaMixin

PREFIX = "run."


class RunsMixin(MetaMixin):
    """One record per job (the last run by any worker), replaced atomically."""

    def put_run(self, run: RunRecord) -> None:
        """Store `run` as the last run of its job."""
        self.set_meta(PREFIX + run.job, run.to_json())

    def last_runs(self) -> dict[str, RunRecord]:
        """The last run of each job, by job name (records of another version are ignored)."""
        out: dict[str, RunRecord] = {}
        for key, value in self.meta_with_prefix(PREFIX).items():
            try:
                out[key[len(PREFIX) :]] = RunRecord.from_json(value)
            except (ValueError, TypeError, KeyError):
                continue
        return out
