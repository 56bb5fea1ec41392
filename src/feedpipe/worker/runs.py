"""Run records of the worker's jobs: each run replaces its job's record, carrying the last
success forward (the records themselves live in the store)."""

from __future__ import annotations

from dataclasses import replace

from feedpipe.model import RunRecord
from feedpipe.store import RunsStore


class RunLog:
    """Writes and reads run records through the store."""

    def __init__(self, store: RunsStore) -> None:
        self.store = store

    def record(self, run: RunRecord) -> RunRecord:
        """Store `run` as the job's last run, carrying the last success time forward."""
        if run.outcome == "ok":
            run = replace(run, last_ok_at=run.started_at)
        else:
            previous = self.last().get(run.job)
            run = replace(run, last_ok_at=previous.last_ok_at if previous else None)
        self.store.put_run(run)
        return run

    def last(self) -> dict[str, RunRecord]:
        """The last run of each job, by job name."""
        return self.store.last_runs()
