"""The worker's three jobs over the Feedpipe service: sync + build, plan + fill, dispatch."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from feedpipe.outbox.dispatch import Latency, Stop, process_owner
from feedpipe.service import Feedpipe


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one job step did: which job, how long, what it counted."""

    job: str  # "sync" | "build" | "plan" | "dispatch"
    seconds: float
    counts: Mapping[str, int | float]


class Jobs(Protocol):
    """What the scheduler runs; the worker is a thin shell over an implementation of this."""

    def sync_build(self) -> Sequence[StepResult]:
        """Sync the source into the store, then write the feeds that changed."""

    def plan_fill(self) -> Sequence[StepResult]:
        """Plan the digests that are due and queue them in the outbox."""

    def dispatch_some(self, stop: Stop) -> Sequence[StepResult]:
        """Send due outbox messages until none is due or `stop()` is true (checked per batch)."""

    def release(self) -> int:
        """Hand back outbox rows this process still holds (a stop that ran out of time)."""

    def close(self) -> None: ...


class ServiceJobs:
    """The real jobs: `Feedpipe.build`, the outbox fill and the outbox dispatcher."""

    def __init__(
        self, service: Feedpipe, lease_seconds: float, on_latency: Latency | None = None
    ) -> None:
        self.service = service
        self.lease = timedelta(seconds=lease_seconds)
        self.on_latency = on_latency

    def sync_build(self) -> Sequence[StepResult]:
        report = self.service.build(sync=True)
        sync = report.sync
        results = []
        if sync is not None:
            results.append(
                StepResult(
                    "sync",
                    sync.seconds,
                    {
                        "added": len(sync.added),
                        "updated": len(sync.updated),
                        "removed": len(sync.removed),
                        "unchanged": sync.unchanged,
                        "skipped": len(sync.skipped),
                        "posts": self.service.post_count(),
                    },
                )
            )
        build = {
            "feeds": report.feeds,
            "written": len(report.written),
            "unchanged": report.unchanged,
            "removed": len(report.removed),
        }
        return [*results, StepResult("build", report.seconds, build)]

    def plan_fill(self) -> Sequence[StepResult]:
        started = time.perf_counter()
        report = self.service.outbox.fill(self.service.clock.now())
        counts = {"due": report.due, "editions": report.editions, "queued": report.queued}
        return [StepResult("plan", time.perf_counter() - started, counts)]

    def dispatch_some(self, stop: Stop) -> Sequence[StepResult]:
        dispatch = self.service.outbox.dispatch(
            stop=stop, lease=self.lease, on_latency=self.on_latency
        )
        report = asyncio.run(dispatch)
        counts = {
            "sent": report.sent,
            "retry": report.retry,
            "soft": report.soft,
            "throttled": report.throttled,
            "blocked": report.blocked,
            "failed": report.failed,
            "cancelled": report.cancelled,
            "bounced_subscribers": report.bounced_subscribers,
            "batches": report.batches,
            "server_down": int(report.server_down),
            "paused": int(report.paused is not None),
        }
        return [StepResult("dispatch", report.seconds, counts)]

    def release(self) -> int:
        return self.service.release_outbox(process_owner())

    def close(self) -> None:
        self.service.close()
