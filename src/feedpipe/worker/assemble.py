"""Builds a Worker for a Feedpipe service from its settings (leader kind, metrics, watch)."""

from __future__ import annotations

from feedpipe.service import Feedpipe
from feedpipe.worker.jobs import ServiceJobs
from feedpipe.worker.leader import (
    FileLeader,
    Leadership,
    PgLeader,
    SoleLeader,
    lock_path,
    worker_identity,
)
from feedpipe.worker.metrics import WorkerMetrics
from feedpipe.worker.readers_metrics import ReaderTotals
from feedpipe.worker.runner import Worker, WorkerParts
from feedpipe.worker.runs import RunLog
from feedpipe.worker.status import sending


def leadership_for(service: Feedpipe) -> Leadership:
    """PostgreSQL: an advisory lock; a SQLite file: an exclusive lock file (a second worker is
    refused with WorkerRefused); anything else: this process alone."""
    identity = worker_identity()
    lock = service.leader_lock(identity)
    if lock is not None:
        return PgLeader(service, lock, identity)
    path = lock_path(service)
    if path is None:
        return SoleLeader(identity)
    leader = FileLeader(service, path, identity)
    leader.acquire(service.clock.now())
    return leader


def outbox_states(service: Feedpipe) -> dict[str, int]:
    return {str(state): count for state, count in service.outbox.counts().items()}


def assemble(service: Feedpipe, *, once: bool = False) -> Worker:
    """A worker over `service`; `once` leaves out the metrics endpoint and the file watch."""
    ws = service.settings.worker
    metrics = None
    if ws.metrics_port is not None and not once:
        metrics = WorkerMetrics(lambda: outbox_states(service), lambda: sending(service))
        metrics.registry.register(ReaderTotals(service.reader_rows))
    jobs = ServiceJobs(service, ws.lease_seconds, metrics.latency if metrics else None)
    watch = service.settings.source.path if ws.watch and not once else None
    parts = WorkerParts(
        jobs=jobs,
        leadership=leadership_for(service),
        clock=service.clock,
        settings=ws,
        runs=RunLog(service),
        metrics=metrics,
        watch_path=watch,
    )
    return Worker(parts)
