"""The worker: APScheduler jobs in threads, leader polling and signals in the main thread."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from feedpipe.clock import Clock
from feedpipe.errors import FeedpipeError, StoreLockedError
from feedpipe.model import RunRecord
from feedpipe.settings import WorkerSettings
from feedpipe.store import mask
from feedpipe.worker.jobs import Jobs, StepResult
from feedpipe.worker.leader import Leadership
from feedpipe.worker.logs import LOGGER, event, log_fields
from feedpipe.worker.metrics import WorkerMetrics
from feedpipe.worker.runs import RunLog
from feedpipe.worker.watch import SourceWatch

ELECT_SECONDS = 2.0  # how often a follower tries to become the leader (and a leader checks)
SYNC, PLAN, DISPATCH, PUBLISH = "sync_build", "plan_fill", "dispatch", "publish"
# A job missed while the process was busy or suspended runs once when it can (coalesced).
JOB_DEFAULTS = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}


class StopFlag:
    """Set once, read by every thread, waited on by the main thread: safe in a signal handler.

    `set` takes no lock (a `threading.Event` does: a signal arriving while the main thread is
    inside the Event's own lock deadlocked the worker, issue 15); it sets a plain attribute and
    writes one byte to a non-blocking self-pipe, which `wait` selects on.
    """

    def __init__(self) -> None:
        self._set = False
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):  # pipe full (already set) or closed
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Block until set or `timeout` seconds passed (a signal handler may set it meanwhile);
        whether it is set."""
        if not self._set:
            with contextlib.suppress(InterruptedError):
                select.select([self._read], [], [], timeout)
        return self._set


@dataclass
class WorkerParts:
    """Everything a worker runs with, built by `feedpipe.worker.assemble`."""

    jobs: Jobs
    leadership: Leadership
    clock: Clock
    settings: WorkerSettings
    runs: RunLog | None = None
    metrics: WorkerMetrics | None = None
    watch_path: Path | None = None  # the source to watch (None: poll only)
    on_close: Callable[[], None] | None = None


class Worker:
    """Runs sync + build and planning (leader only) and dispatch (every process) on schedule."""

    def __init__(self, parts: WorkerParts) -> None:
        self.parts = parts
        self.jobs = parts.jobs
        self.leadership = parts.leadership
        self.settings = parts.settings
        self.log = logging.getLogger(LOGGER)
        self.stopping = StopFlag()  # set by a signal, stop() or request_stop(); never locks
        self._stop_signal: int | None = None
        self._stop_requested = False  # by a signal or request_stop: a second signal exits at once
        self._leader_lock = threading.Lock()  # sync and plan never overlap each other
        self._state = threading.Lock()
        self._pending = {SYNC: False, PLAN: False, DISPATCH: False, PUBLISH: False}
        self._running = {SYNC: False, PLAN: False, DISPATCH: False, PUBLISH: False}
        self._active = 0
        self._idle = threading.Condition(self._state)
        self.scheduler: BackgroundScheduler | None = None
        self.watch: SourceWatch | None = None
        self.failures = 0

    # --- one step, recorded -------------------------------------------------------------

    def step(self, name: str, call: Callable[[], Sequence[StepResult]]) -> list[StepResult]:
        """Run one job call: log, record and count what it did, or the error it raised."""
        started_at = self.parts.clock.now()
        started = time.perf_counter()
        try:
            results = list(call())
        except Exception as exc:  # last resort: any failure of one job must not stop the worker
            self._failed(name, started_at, time.perf_counter() - started, exc)
            return []
        for result in results:
            self._succeeded(result, started_at)
        return results

    def _succeeded(self, result: StepResult, started_at: datetime) -> None:
        if result.error:  # ran, but did not do its work (the mail server was unreachable)
            self.failures += 1
            event(self.log, f"{result.job}.failed", logging.ERROR, error=result.error)
        idle = result.job == "dispatch" and not result.counts.get("batches")
        if not idle:
            log_fields(self.log, result.job, {"seconds": result.seconds, **result.counts})
        else:
            event(self.log, result.job, logging.DEBUG, seconds=result.seconds, idle=True)
        if self.parts.metrics is not None:
            self.parts.metrics.observe(result, started_at)
        if self.parts.runs is not None and not idle:
            run = RunRecord(
                result.job,
                self.leadership.identity,
                started_at,
                result.seconds,
                "error" if result.error else "ok",
                result.counts,
                result.error,
            )
            self._record(run)

    def _failed(self, name: str, started_at: datetime, seconds: float, exc: Exception) -> None:
        self.failures += 1
        job = {SYNC: "sync", PLAN: "plan"}.get(name, name)
        error = mask(describe(exc))[:500]
        event(self.log, f"{job}.failed", logging.ERROR, seconds=seconds, error=error)
        if self.parts.metrics is not None:
            self.parts.metrics.failed(job)
        if self.parts.runs is not None:
            identity = self.leadership.identity
            self._record(RunRecord(job, identity, started_at, seconds, "error", {}, error))

    def _record(self, run: RunRecord) -> None:
        try:
            assert self.parts.runs is not None
            self.parts.runs.record(run)
        except FeedpipeError as exc:  # the store is away: the log line still tells
            event(self.log, "record.failed", logging.WARNING, job=run.job, error=exc)

    # --- the three scheduled jobs ---------------------------------------------------------

    def sync_job(self) -> None:
        with self._job(SYNC):
            if self.leadership.is_leader and not self.stopping.is_set():
                with self._leader_lock:
                    results = self.step(SYNC, self.jobs.sync_build)
                if any(r.job == "build" and r.counts.get("written") for r in results):
                    self.kick(PUBLISH)  # in its own thread: a slow hub never holds up a build

    def publish_job(self) -> None:
        with self._job(PUBLISH):
            if not self.stopping.is_set():
                self.step(PUBLISH, self.jobs.publish)

    def plan_job(self) -> None:
        with self._job(PLAN):
            if self.leadership.is_leader and not self.stopping.is_set():
                with self._leader_lock:
                    results = self.step(PLAN, self.jobs.plan_fill)
                if any(r.counts.get("queued") for r in results):
                    self.kick(DISPATCH)

    def dispatch_job(self) -> None:
        with self._job(DISPATCH):
            if not self.stopping.is_set():
                self.step(DISPATCH, lambda: self.jobs.dispatch_some(self.stopping.is_set))

    @contextmanager
    def _job(self, name: str) -> Iterator[None]:
        """Marks job `name` running (for kicks and for a graceful stop) while its body runs."""
        with self._state:
            self._pending[name] = False
            self._running[name] = True
            self._active += 1
        try:
            yield
        finally:
            with self._state:
                self._running[name] = False
                self._active -= 1
                self._idle.notify_all()

    def kick(self, name: str) -> None:
        """Run job `name` now, or right after its current run (never two at once)."""
        with self._state:
            self._pending[name] = True
            running = self._running[name]
        if not running:
            self._run_now(name)

    def _run_now(self, name: str) -> None:
        scheduler = self.scheduler
        if scheduler is None or self.stopping.is_set():
            return
        try:
            scheduler.modify_job(name, next_run_time=datetime.now(UTC))
        except Exception as exc:  # APScheduler shutting down (not the store): the job is gone
            event(self.log, "kick.skipped", logging.DEBUG, job=name, error=exc)

    def _after_job(self, ev: JobExecutionEvent) -> None:
        with self._state:
            again = self._pending.get(ev.job_id, False)
        if again:
            self._run_now(ev.job_id)

    # --- life cycle -------------------------------------------------------------------------

    def run_once(self) -> int:
        """One full cycle (sync, build, plan when leading; dispatch until nothing is due)."""
        if self.leadership.poll(self.parts.clock.now()):
            self.sync_job()
            self.publish_job()
            self.plan_job()
        else:
            event(self.log, "leader.other", note="another worker leads: dispatch only")
        self.dispatch_job()
        return 1 if self.failures else 0

    def start(self) -> None:
        """Start the scheduler, the file watch and the metrics endpoint (returns at once)."""
        leader = self.leadership.poll(self.parts.clock.now())
        self._serve_metrics()
        self.scheduler = self._scheduler()
        self.scheduler.start()
        if self.parts.watch_path is not None and self.settings.watch:
            self.watch = SourceWatch(
                self.parts.watch_path, lambda: self.kick(SYNC), self.settings.debounce_seconds
            )
            self.watch.start()
        event(self.log, "worker.started", worker=self.leadership.identity, leader=leader)

    def _serve_metrics(self) -> None:
        metrics, port = self.parts.metrics, self.settings.metrics_port
        if metrics is not None and port is not None:
            bound = metrics.serve(port)
            event(self.log, "metrics.serving", url=f"http://127.0.0.1:{bound}/metrics")

    def _scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(4)}, job_defaults=JOB_DEFAULTS, timezone=UTC
        )
        s = self.settings
        now = datetime.now(UTC)
        for name, func, seconds, first in (
            (SYNC, self.sync_job, s.poll_seconds, now),
            (PLAN, self.plan_job, s.plan_seconds, now + timedelta(milliseconds=200)),
            (DISPATCH, self.dispatch_job, s.dispatch_seconds, now + timedelta(milliseconds=400)),
            (PUBLISH, self.publish_job, s.poll_seconds, now + timedelta(milliseconds=600)),
        ):
            trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
            scheduler.add_job(func, trigger, id=name, name=name, next_run_time=first)
        scheduler.add_listener(self._after_job, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        return scheduler

    def tick(self) -> None:
        """Main-thread heartbeat: keep or take leadership; a new leader syncs and plans at once."""
        was = self.leadership.is_leader
        now_leader = self.leadership.poll(self.parts.clock.now())
        if self.parts.metrics is not None:
            self.parts.metrics.leader.set(1 if now_leader else 0)
        if now_leader and not was:
            self.kick(SYNC)
            self.kick(PLAN)

    def request_stop(self, signum: int | None = None) -> None:
        """Ask `serve` to stop (what the signal handler does): no lock, no blocking."""
        self._stop_signal = signum
        self._stop_requested = True
        self.stopping.set()

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; then stop gracefully within shutdown_timeout; exit code."""
        self.install_signals()
        self.start()
        while not self.stopping.wait(ELECT_SECONDS):
            self.tick()
        name = signal.Signals(self._stop_signal).name if self._stop_signal else "request"
        event(self.log, "worker.stopping", signal=name, timeout=self.settings.shutdown_timeout)
        clean = self.stop(self.settings.shutdown_timeout)
        if not clean:
            event(
                self.log,
                "worker.stopped",
                logging.WARNING,
                clean=False,
                released=self._release(),
                note="in-flight messages handed back to the outbox",
            )
            _flush_logs()
            os._exit(0)  # job threads still running: their leases hand the batch to others
        event(self.log, "worker.stopped", clean=True)
        return 0

    def _release(self) -> int | str:
        """Give back this process's leased rows so other workers (or the next start) send them
        at once; on failure the leases still expire after lease_seconds."""
        try:
            return self.jobs.release()
        except FeedpipeError as exc:  # the store may be what failed: the leases remain the net
            return f"failed: {type(exc).__name__}"

    def install_signals(self) -> None:
        """SIGTERM/SIGINT set the stop flag (nothing else: no lock, no log, no I/O but one
        byte to a pipe); `serve` wakes from it and logs `worker.stopping`."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            if self._stop_requested:  # second signal: leave at once (outbox keeps it)
                os.write(
                    2, f"feedpipe: {signal.Signals(signum).name} again: exiting now\n".encode()
                )
                os._exit(128 + signum)
            self.request_stop(signum)

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        with contextlib.suppress(ValueError, OSError):  # stderr without a file descriptor
            faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks on demand

    def stop(self, timeout: float) -> bool:
        """Take no new work, wait up to `timeout` for running jobs, close everything.
        Returns False when a job was still running at the deadline."""
        self.stopping.set()
        if self.watch is not None:
            self.watch.close()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            clean = self._active == 0
        self._close(clean)
        return clean

    def _close(self, clean: bool) -> None:
        if self.parts.metrics is not None:
            self.parts.metrics.close()
        self.leadership.close()
        if clean:
            self.jobs.close()
        if self.parts.on_close is not None:
            self.parts.on_close()


def describe(exc: Exception) -> str:
    """What a failed job logs: a lock wait that ran out says only its sentence (not the driver's
    error); anything else is named by its type."""
    if isinstance(exc, StoreLockedError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _flush_logs() -> None:
    for handler in logging.getLogger("feedpipe").handlers:
        handler.flush()
