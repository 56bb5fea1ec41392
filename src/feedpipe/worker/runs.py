"""Run records of the jobs, whoever ran them (the worker, `feedpipe sync|build|send`): each run
replaces its job's record, carrying the last success forward (the records live in the store)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime

from feedpipe.model import DispatchReport, FillReport, RunRecord
from feedpipe.store import RunsStore

Counts = dict[str, int | float]


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


def cli_identity(command: str) -> str:
    """Who ran a job from the command line: `cli send@host:pid`."""
    return f"cli {command}@{os.uname().nodename[:30]}:{os.getpid()}"


def fill_counts(report: FillReport) -> Counts:
    return {
        "due": report.due,
        "editions": report.editions,
        "queued": report.queued,
        "held": report.held,
        "late": report.late,
        "expired": report.expired,
    }


def dispatch_counts(report: DispatchReport) -> Counts:
    return {
        "sent": report.sent,
        "retry": report.retry,
        "soft": report.soft,
        "throttled": report.throttled,
        "blocked": report.blocked,
        "failed": report.failed,
        "cancelled": report.cancelled,
        "expired": report.expired,
        "bounced_subscribers": report.bounced_subscribers,
        "batches": report.batches,
        "server_down": int(report.server_down),
        "paused": int(report.paused is not None),
    }


def dispatch_run(
    worker: str, started_at: datetime, report: DispatchReport, outage: str | None = None
) -> RunRecord:
    """A dispatch run: an error (with the reason, `outage` when given) when nothing more could
    be delivered."""
    counts = dispatch_counts(report)
    if report.server_down:
        error = outage or f"mail server unreachable: {report.down_reason}"
        return RunRecord("dispatch", worker, started_at, report.seconds, "error", counts, error)
    return RunRecord("dispatch", worker, started_at, report.seconds, "ok", counts)
