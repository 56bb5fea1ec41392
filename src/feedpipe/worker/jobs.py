"""The worker's jobs over the Feedpipe service: sync + build, publish (WebSub), plan + fill,
dispatch."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from feedpipe.outbox.dispatch import Latency, Stop, process_owner
from feedpipe.service import Feedpipe
from feedpipe.worker.runs import build_counts, dispatch_counts, fill_counts, sync_counts


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one job step did: which job, how long, what it counted."""

    job: str  # "sync" | "build" | "publish" | "plan" | "dispatch"
    seconds: float
    counts: Mapping[str, int | float]
    error: str | None = None  # the job ran but did not do its work (mail server unreachable)


class Jobs(Protocol):
    """What the scheduler runs; the worker is a thin shell over an implementation of this."""

    def sync_build(self) -> Sequence[StepResult]:
        """Sync the source into the store, then write the feeds that changed."""

    def publish(self) -> Sequence[StepResult]:
        """Tell the WebSub hubs of the feeds the builds since the last call changed ([] when
        none did)."""

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
        self._changed: dict[str, None] = {}  # feed URLs built but not yet published, in order
        self._changed_lock = threading.Lock()

    def sync_build(self) -> Sequence[StepResult]:
        report = self.service.build(sync=True)
        if self.service.settings.websub_hubs:
            urls = self.service.changed_feed_urls(report)
            with self._changed_lock:
                self._changed.update(dict.fromkeys(urls))
        results = []
        if report.sync is not None:
            counts = sync_counts(report.sync, self.service.post_count())
            results.append(StepResult("sync", report.sync.seconds, counts))
        return [*results, StepResult("build", report.seconds, build_counts(report))]

    def publish(self) -> Sequence[StepResult]:
        with self._changed_lock:
            urls, self._changed = list(self._changed), {}
        if not urls:
            return []
        report = self.service.publish(urls)
        return [StepResult("publish", report.seconds, report.counts(), report.error())]

    def plan_fill(self) -> Sequence[StepResult]:
        started = time.perf_counter()
        report = self.service.outbox.fill(self.service.clock.now())
        return [StepResult("plan", time.perf_counter() - started, fill_counts(report))]

    def dispatch_some(self, stop: Stop) -> Sequence[StepResult]:
        dispatch = self.service.outbox.dispatch(
            stop=stop, lease=self.lease, on_latency=self.on_latency
        )
        report = asyncio.run(dispatch)
        outage = self.service.outbox.outage(report)
        error = outage.line if outage else None
        return [StepResult("dispatch", report.seconds, dispatch_counts(report), error)]

    def release(self) -> int:
        return self.service.release_outbox(process_owner())

    def close(self) -> None:
        self.service.close()
