"""Prometheus metrics of one worker process, served on 127.0.0.1:metrics_port at /metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from threading import Thread
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from feedpipe.errors import FeedpipeError
from feedpipe.worker.jobs import StepResult
from feedpipe.worker.logs import LOGGER, event

StateCounts = Callable[[], Mapping[str, int]]
Sending = Callable[[], Mapping[str, Any]]  # worker.status.sending: the circuit breaker
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _OutboxStates(Collector):
    """Messages by outbox state, read from the store when scraped."""

    def __init__(self, counts: StateCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "feedpipe_outbox_messages", "Outbox messages by state.", labels=["state"]
        )
        try:
            for state, count in sorted(self.counts().items()):
                family.add_metric([state], count)
        except FeedpipeError as exc:  # a scrape must not fail because the store is away
            event(logging.getLogger(LOGGER), "metrics.error", logging.WARNING, error=exc)
        yield family


class _Sending(Collector):
    """`feedpipe_sending_paused{transport, reply, fix}`: 1 while the breaker holds sending."""

    def __init__(self, sending: Sending) -> None:
        self.sending = sending

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "feedpipe_sending_paused",
            "1 while sending is paused by the circuit breaker (labels: the reply, what to fix).",
            labels=["transport", "reply", "fix"],
        )
        try:
            found = self.sending()
            paused = bool(found.get("paused"))
            labels = [str(found.get("transport", "")), str(found.get("reply") or ""), ""]
            if paused:
                labels[2] = str(found.get("fix") or "")
            family.add_metric(labels, 1 if paused else 0)
        except FeedpipeError as exc:
            event(logging.getLogger(LOGGER), "metrics.error", logging.WARNING, error=exc)
        yield family


class _Deliverability(Collector):
    """Bounce and complaint rates by window (7d, 30d) and inbound messages kept."""

    def __init__(self, rates: Sending) -> None:
        self.rates = rates

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["window"]
        bounce = GaugeMetricFamily("feedpipe_bounce_rate", "Hard bounces per sent.", labels=labels)
        complaint = GaugeMetricFamily(
            "feedpipe_complaint_rate", "Spam complaints per message sent.", labels=labels
        )
        kept = GaugeMetricFamily(
            "feedpipe_inbound_kept", "Inbound messages kept for the operator (not recognised)."
        )
        try:
            found = self.rates()
            for window, r in found.get("windows", {}).items():
                bounce.add_metric([window], r["bounce_rate"])
                complaint.add_metric([window], r["complaint_rate"])
            kept.add_metric([], found.get("inbound", {}).get("unprocessed", 0))
        except FeedpipeError as exc:
            event(logging.getLogger(LOGGER), "metrics.error", logging.WARNING, error=exc)
        yield from (bounce, complaint, kept)


class WorkerMetrics:
    """The worker's metrics in their own registry (no process-wide state)."""

    def __init__(
        self,
        state_counts: StateCounts | None = None,
        sending: Sending | None = None,
        rates: Sending | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.posts = Gauge("feedpipe_posts", "Posts in the store (not removed).", registry=reg)
        self.feeds_written = Counter("feedpipe_feeds_written", "Feed files written.", registry=reg)
        self.digests_planned = Counter(
            "feedpipe_digests_planned",
            "Subscribers whose digest was due and planned.",
            registry=reg,
        )
        self.digests_late = Counter(
            "feedpipe_digests_late",
            "Digests merged into the next one: the slot was missed by more than late_after "
            "(missed) or the message was still queued at its deadline (expired).",
            ["reason"],
            registry=reg,
        )
        self.messages = Counter(
            "feedpipe_messages", "Messages by dispatch outcome.", ["outcome"], registry=reg
        )
        self.smtp_latency = Histogram(
            "feedpipe_smtp_latency_seconds",
            "Transport time per message (a batch's time divided by its size).",
            buckets=LATENCY_BUCKETS,
            registry=reg,
        )
        self.last_success = Gauge(
            "feedpipe_last_success_timestamp_seconds",
            "When each job last ended well (Unix time).",
            ["job"],
            registry=reg,
        )
        self.runs = Counter("feedpipe_job_runs", "Job runs.", ["job", "outcome"], registry=reg)
        self.leader = Gauge("feedpipe_leader", "1 while this process leads.", registry=reg)
        self.publishes = Counter(
            "feedpipe_websub_publishes",
            "WebSub publish notifications (one feed URL to one hub) by outcome.",
            ["outcome"],
            registry=reg,
        )
        if state_counts is not None:
            reg.register(_OutboxStates(state_counts))
        if sending is not None:
            reg.register(_Sending(sending))
        if rates is not None:
            reg.register(_Deliverability(rates))
        self._server: Any = None
        self._thread: Thread | None = None

    def observe(self, result: StepResult, at: datetime) -> None:
        """Count one successful job step."""
        self.runs.labels(result.job, "ok").inc()
        self.last_success.labels(result.job).set(at.timestamp())
        counts = result.counts
        if "posts" in counts:
            self.posts.set(counts["posts"])
        if result.job == "build":
            self.feeds_written.inc(counts.get("written", 0))
        if result.job == "plan":
            self.digests_planned.inc(counts.get("due", 0))
            self.digests_late.labels("missed").inc(counts.get("late", 0))
        if result.job in ("plan", "dispatch"):
            self.digests_late.labels("expired").inc(counts.get("expired", 0))
        if result.job == "publish":
            for outcome in ("ok", "failed"):
                self.publishes.labels(outcome).inc(counts.get(outcome, 0))
        if result.job == "dispatch":
            for outcome in ("sent", "retry", "soft", "throttled", "blocked", "failed", "cancelled"):
                self.messages.labels(outcome).inc(counts.get(outcome, 0))

    def failed(self, job: str) -> None:
        self.runs.labels(job, "error").inc()

    def latency(self, seconds: float, messages: int) -> None:
        """One transport call of `messages` messages that took `seconds`."""
        for _ in range(messages):
            self.smtp_latency.observe(seconds / messages)

    def serve(self, port: int) -> int:
        """Serve /metrics on 127.0.0.1:`port` (0: any free port); returns the port."""
        self._server, self._thread = start_http_server(port, "127.0.0.1", self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
