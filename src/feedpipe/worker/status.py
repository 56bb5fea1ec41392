"""`feedpipe status`: last runs, outbox queue by state, next due digests, the leader."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from feedpipe.cli.textgrid import align
from feedpipe.digests.plan import next_send_after
from feedpipe.model import SubscriberStatus
from feedpipe.service import Feedpipe
from feedpipe.worker.leader import file_lock_holder, lock_path, pg_lock_holder
from feedpipe.worker.runs import JOBS, LEADER_KEY, RunLog, RunRecord

NEXT_DUE = 5  # send instants listed


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """Everything `feedpipe status` shows."""

    store: str
    now: datetime
    runs: dict[str, RunRecord]
    queue: dict[str, int] | None  # None: the outbox is not available
    next_due: list[tuple[datetime, int]]
    leader: str | None  # the live leader (lock holder), None when no worker runs
    last_leader: dict[str, Any] = field(default_factory=dict)


def collect(service: Feedpipe) -> WorkerStatus:
    """Read the status from the store (changes nothing)."""
    store = service.store
    now = service.clock.now()
    raw = store.get_meta(LEADER_KEY)
    return WorkerStatus(
        store=store.engine.url.render_as_string(hide_password=True),
        now=now,
        runs=RunLog(store.engine).last(),
        queue=_queue(service),
        next_due=next_due(service, now),
        leader=live_leader(service),
        last_leader=json.loads(raw) if raw else {},
    )


def _queue(service: Feedpipe) -> dict[str, int] | None:
    try:
        return {str(s): n for s, n in service.outbox.counts().items()}
    except ImportError:  # pragma: no cover - an install without the outbox
        return None


def next_due(service: Feedpipe, now: datetime, limit: int = NEXT_DUE) -> list[tuple[datetime, int]]:
    """The next `limit` send instants of active subscribers and how many are due at each
    (an instant already past means: due at the next plan)."""
    counts: Counter[datetime] = Counter()
    for sub in service.store.subscribers(SubscriberStatus.ACTIVE):
        counts[next_send_after(sub, sub.last_digest_at or sub.created_at)] += 1
    return sorted(counts.items())[:limit]


def live_leader(service: Feedpipe) -> str | None:
    """Who holds the leader lock right now."""
    engine = service.store.engine
    if service.store.dialect == "postgresql":
        return pg_lock_holder(engine)
    path = lock_path(engine)
    return file_lock_holder(path) if path is not None else None


def to_json(status: WorkerStatus) -> dict[str, Any]:
    return {
        "store": status.store,
        "now": status.now.isoformat(),
        "leader": status.leader,
        "last_leader": status.last_leader,
        "runs": {job: json.loads(run.to_json()) for job, run in sorted(status.runs.items())},
        "queue": status.queue,
        "next_due": [{"at": at.isoformat(), "subscribers": n} for at, n in status.next_due],
    }


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 0:
        return then.strftime("%Y-%m-%d %H:%M UTC")
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return then.strftime("%Y-%m-%d %H:%M UTC")


def _counts(run: RunRecord) -> str:
    return ", ".join(f"{k} {v}" for k, v in run.counts.items() if v) or "-"


def table(status: WorkerStatus) -> str:
    """The human view: a few aligned tables."""
    lines = [f"store   {status.store}", f"leader  {status.leader or 'no worker running'}"]
    rows: list[tuple[str, ...]] = [
        ("job", "last run", "took", "outcome", "last ok", "counts / error")
    ]
    for job in JOBS:
        run = status.runs.get(job)
        if run is None:
            rows.append((job, "never", "", "", "", ""))
            continue
        detail = run.error if run.error else _counts(run)
        rows.append(
            (
                job,
                _ago(status.now, run.started_at),
                f"{run.seconds:.2f} s",
                run.outcome,
                _ago(status.now, run.last_ok_at),
                detail or "",
            )
        )
    lines += ["", *align(rows)]
    if status.queue is not None:
        queue = [(state, str(n)) for state, n in status.queue.items()]
        lines += ["", *align([("outbox", "messages"), *queue])]
    due = [(at.strftime("%Y-%m-%d %H:%M UTC"), str(n)) for at, n in status.next_due]
    lines += ["", *align([("next digests", "subscribers"), *due])]
    return "\n".join(lines)
