"""`feedpipe status`: last runs, outbox queue by state, sending paused?, next due digests, the
leader."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from feedpipe.digests.plan import next_send_after
from feedpipe.model import Frequency, RunRecord, Schedule
from feedpipe.model.websub import PublishState
from feedpipe.service import Feedpipe
from feedpipe.worker.leader import file_lock_holder, lock_path

NEXT_DUE = 5  # send instants listed
ScheduleCounts = Sequence[tuple[Schedule, datetime, int]]  # (schedule, cursor, subscribers)


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """Everything `feedpipe status` shows."""

    store: str
    now: datetime
    runs: dict[str, RunRecord]
    queue: dict[str, int] | None  # None: the outbox is not available
    next_due: list[tuple[datetime, int]]  # the first few send instants
    leader: str | None  # the live leader (lock holder), None when no worker runs
    last_leader: dict[str, Any] = field(default_factory=dict)
    sending: dict[str, Any] = field(default_factory=dict)  # the transport's circuit breaker
    due_instants: int = 0  # send instants in all (next_due lists the first of them)
    schedules: list[tuple[str, int]] = field(default_factory=list)  # described, subscribers
    publishes: dict[str, PublishState] = field(default_factory=dict)  # WebSub, by hub
    deliverability: dict[str, Any] = field(default_factory=dict)  # bounce and complaint rates


def collect(service: Feedpipe, digests: int = NEXT_DUE) -> WorkerStatus:
    """Read the status from the store (changes nothing); the first `digests` send instants."""
    now = service.clock.now()
    counts = service.subscriptions.schedule_counts()  # read once for both tables
    due = next_due(counts)
    return WorkerStatus(
        store=service.store_url,
        now=now,
        runs=service.last_runs(),
        queue=_queue(service),
        next_due=due[:digests],
        leader=live_leader(service),
        last_leader=service.last_leader(),
        sending=sending(service),
        due_instants=len(due),
        schedules=schedules(counts, service.settings.digest.instant_delay),
        publishes=service.publish_states(),
        deliverability=deliverability(service),
    )


def deliverability(service: Feedpipe) -> dict[str, Any]:
    """Bounce and complaint rates (7 and 30 days, the last editions) and the inbound mail."""
    return service.outbox.deliverability_json()


def schedules(groups: ScheduleCounts, instant_delay: int) -> list[tuple[str, int]]:
    """Active subscribers by schedule as people read it ("monthly on day 1 at 08:00 UTC"),
    the most common first."""
    counts: Counter[str] = Counter()
    for schedule, _, count in groups:
        counts[schedule.describe(instant_delay)] += count
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def sending(service: Feedpipe) -> dict[str, Any]:
    """The configured transport's circuit breaker: paused (with the reply and what to fix)?"""
    outbox = service.outbox
    breaker = outbox.breaker()
    found: dict[str, Any] = {"transport": outbox.transport_name, "paused": breaker.is_open}
    if breaker.is_open:
        found |= {
            "reply": breaker.paused,
            "fix": breaker.fix,
            "since": breaker.since and breaker.since.isoformat(),
            "next_probe": breaker.probe_at and breaker.probe_at.isoformat(),
            "failed_probes": breaker.probes,
        }
    return found


def sending_line(found: dict[str, Any]) -> str:
    """`sending paused: <reply> — <fix>`, or `sending ok`."""
    if not found.get("paused"):
        return f"sending ok ({found.get('transport', '?')})"
    probe = f"next probe {found['next_probe']}" if found.get("next_probe") else "no probes"
    return (
        f"sending paused: {found['reply']} — {found['fix']}; {probe}"
        " (or `feedpipe outbox resume` once fixed)"
    )


def _queue(service: Feedpipe) -> dict[str, int] | None:
    try:
        return {str(s): n for s, n in service.outbox.counts().items()}
    except ImportError:  # pragma: no cover - an install without the outbox
        return None


def next_due(groups: ScheduleCounts) -> list[tuple[datetime, int]]:
    """Every coming send instant of active subscribers and how many are due at each (an
    instant already past means: due at the next plan). Instant subscribers have no send
    instants of their own (they are mailed as posts come out)."""
    counts: Counter[datetime] = Counter()
    for schedule, cursor, count in groups:
        if schedule.frequency is not Frequency.INSTANT:
            counts[next_send_after(schedule, cursor)] += count
    return sorted(counts.items())


def live_leader(service: Feedpipe) -> str | None:
    """Who holds the leader lock right now."""
    path = lock_path(service)
    if path is None:
        return service.leader_lock_holder()
    return file_lock_holder(path)


def to_json(status: WorkerStatus) -> dict[str, Any]:
    return {
        "store": status.store,
        "now": status.now.isoformat(),
        "leader": status.leader,
        "last_leader": status.last_leader,
        "runs": {job: json.loads(run.to_json()) for job, run in sorted(status.runs.items())},
        "queue": status.queue,
        "sending": status.sending,
        "next_due": [{"at": at.isoformat(), "subscribers": n} for at, n in status.next_due],
        "due_instants": status.due_instants,
        "schedules": [{"schedule": text, "subscribers": n} for text, n in status.schedules],
        "websub": [json.loads(state.to_json()) for state in status.publishes.values()],
        "deliverability": status.deliverability,
    }
