"""Public-form requests (subscribe, "mail me my links") stored before the reply and done after
it: the request path does the same work whatever the address's state (validate, one insert),
so its timing tells nothing, and a crash of `feedpipe serve` loses no accepted request."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from feedpipe.clock import Clock
from feedpipe.errors import FeedpipeError, StoreError
from feedpipe.model.intake import IntakeKind, IntakeRequest
from feedpipe.store import IntakeStore

LOG = logging.getLogger("feedpipe.web")
MAX_WAITING = 10_000  # requests stored at most (every process together); past it: 503
# The work waits for a lull: no request stored for this long (by then the last reply is out),
# so the work an address needs never slows (and so never times) a reply; but a stream of
# requests without a lull holds it back at most MAX_DEFER seconds.
SETTLE_SECONDS = 0.01
MAX_DEFER = 5.0
LEASE_SECONDS = 60.0  # a stored request is its process's for this long, renewed as it works
BATCH = 100  # requests read at once
RETRY_AFTER = 60  # seconds a refused visitor is told to wait when the intake is full
# A request whose work failed on the store this many times in one process, or that was taken
# over this many times (its work kills processes?), is dropped: it must not block the rest.
MAX_TRIES = 5


@dataclass(frozen=True, slots=True)
class IntakeConfig:
    """The intake's knobs (WebConfig; `delay` also from $FEEDPIPE_WEB_INTAKE_DELAY): at most
    `cap` requests stored; work after `delay` s without a request (at most max(`delay`,
    MAX_DEFER) s after it could start); leases of `lease` s."""

    cap: int = MAX_WAITING
    delay: float = SETTLE_SECONDS
    lease: float = LEASE_SECONDS


def owner_name(host: str, pid: int, token: str) -> str:
    """The lease owner of one web process: `host:pid:token` (≤ 64 characters)."""
    return f"{host[:40]}:{pid}:{token}"


def is_gone(owner: str, me: str, host: str, pid: int, alive: Callable[[int], bool]) -> bool:
    """Whether the process `owner` names is known to be dead: it ran on this host and its pid
    runs no process now (or is ours: we were restarted under the same pid, as in a container).
    Anything else (another host, a pid still running) waits for its lease to end."""
    parts = owner.split(":")
    if owner == me or len(parts) != 3 or parts[0] != host[:40] or not parts[1].isdigit():
        return False
    theirs = int(parts[1])
    return theirs == pid or not alive(theirs)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this host (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _new_owner() -> str:
    return owner_name(socket.gethostname(), os.getpid(), secrets.token_hex(4))


@dataclass
class SubscribeIntake:
    """Stored requests, done by one background thread per web process, oldest first.

    `submit` stores a request leased to this process (one short write, before the reply).
    The thread does each request's work with `handle`, then deletes it. A request whose
    process died is taken over (counting an attempt) by the next process that sweeps: at once
    when that process ran on this host (its pid is gone), else when its lease ends. `handle`
    sees the attempts, so a replay does not mail twice what its first run already queued.
    """

    store: IntakeStore
    clock: Clock
    handle: Callable[[IntakeRequest], object]
    config: IntakeConfig = field(default_factory=IntakeConfig)
    owner: str = field(default_factory=_new_owner)
    alive: Callable[[int], bool] = pid_alive
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _cv: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _woken: bool = field(default=False, init=False, repr=False)
    _polling: bool = field(default=False, init=False, repr=False)
    _submitted: int = field(default=0, init=False, repr=False)
    _finished: int = field(default=0, init=False, repr=False)
    _renewed: float = field(default=0.0, init=False, repr=False)
    _swept: float = field(default=-1e9, init=False, repr=False)
    _tried: Counter[int] = field(default_factory=Counter, init=False, repr=False)
    _gate: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _last_submit: float = field(default=-1e9, init=False, repr=False)
    _deferring_since: float | None = field(default=None, init=False, repr=False)

    def submit(self, kind: IntakeKind, payload: str) -> bool:
        """Store one request (the same statements for any payload); False when full. The gate
        keeps this process's work out of the insert's way (no wait in SQLite's busy loop)."""
        self._last_submit = time.monotonic()
        now = self.clock.now()
        until = now + timedelta(seconds=self.config.lease)
        with self._gate:
            stored = self.store.add_intake(kind, payload, self.owner, now, until, self.config.cap)
        self._last_submit = time.monotonic()
        if not stored:
            return False
        with self._cv:
            self._submitted += 1
            self._woken = True
            self._cv.notify_all()
        self._ensure_thread()
        return True

    def start(self) -> None:
        """Start the thread, which also sweeps: at once (requests a crash left behind), then
        every quarter lease (`feedpipe serve` calls this at start-up)."""
        with self._cv:
            self._polling = True
            self._cv.notify_all()
        self._ensure_thread()

    def join(self) -> None:
        """Wait until every request submitted so far was handled (or failed; tests)."""
        with self._cv:
            target = self._submitted
            self._cv.wait_for(lambda: self._finished >= target or self._thread is None)

    def close(self) -> None:
        """Handle what this process holds, then stop the thread (what is left stays stored)."""
        self._stop.set()
        with self._cv:
            thread = self._thread
            self._cv.notify_all()
        if thread is not None:
            thread.join()

    def drain(self) -> int:
        """Do and delete every request this process holds, oldest first; how many. A
        StoreError stops it (the request stays stored and is tried again later)."""
        done = 0
        while rows := self.store.intake_owned(self.owner, BATCH):
            for row in rows:
                self._await_lull()
                with self._gate:
                    self._renew_if_due()
                    self._do(row)
                done += 1
        self._renewed = time.monotonic()  # holding none: later ones have fresh leases
        return done

    def sweep(self) -> int:
        """Renew this process's leases and take over the requests of dead processes and of
        ended leases; how many were taken. One read when there is nothing to do."""
        self._swept = time.monotonic()
        owners = self.store.intake_owners()
        now = self.clock.now()
        until = now + timedelta(seconds=self.config.lease)
        if self.owner in owners:
            self.store.renew_intake(self.owner, until)
            self._renewed = time.monotonic()
        host, pid = socket.gethostname(), os.getpid()
        gone = [o for o in owners if is_gone(o, self.owner, host, pid, self.alive)]
        if not gone and all(ends > now for ends in owners.values()):
            return 0
        taken = self.store.claim_intake(self.owner, until, now, gone, MAX_WAITING)
        if taken:
            LOG.info("took over %d stored form request(s) of stopped processes", taken)
        return taken

    def _await_lull(self) -> None:
        """In the thread: wait until no request was stored for `delay` s, or until the pass
        has waited max(`delay`, MAX_DEFER) s in all (or the intake stops)."""
        if self._deferring_since is None:
            return
        limit = self._deferring_since + max(self.config.delay, MAX_DEFER)
        while not self._stop.is_set():
            now = time.monotonic()
            lull = self._last_submit + self.config.delay
            if now >= lull or now >= limit:
                return
            self._stop.wait(min(lull, limit) - now)

    def _renew_if_due(self) -> None:
        if time.monotonic() - self._renewed >= self.config.lease / 4:
            self.store.renew_intake(
                self.owner, self.clock.now() + timedelta(seconds=self.config.lease)
            )
            self._renewed = time.monotonic()

    def _do(self, row: IntakeRequest) -> None:
        """Handle one request, then delete it; a request this process tried before (a store
        error stopped it) counts as a replay."""
        tried = self._tried[row.id]
        request = replace(row, attempts=row.attempts + tried)
        self._tried[row.id] += 1
        try:
            if request.attempts >= MAX_TRIES:
                LOG.error("form request %d dropped after %d tries", row.id, request.attempts)
            else:
                self.handle(request)
        except StoreError:
            if tried + 1 < MAX_TRIES:
                raise
            LOG.exception("form request %d dropped after %d store errors", row.id, tried + 1)
        except FeedpipeError as exc:  # the visitor already has their reply: log it
            LOG.warning("form request not handled: %s", exc)
        except Exception:  # last resort: the thread must live on
            LOG.exception("form request failed")
        if not self.store.finish_intake(row.id, self.owner):
            LOG.warning("form request %d was taken over by another process", row.id)
        del self._tried[row.id]

    def _ensure_thread(self) -> None:
        with self._cv:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="feedpipe-subscribe", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                _, polling = self._wait()
                self._deferring_since = time.monotonic()
                self._pass(polling and self._sweep_due())
                self._deferring_since = None
            self._pass(False)
        finally:
            with self._cv:
                self._thread = None
                self._cv.notify_all()

    def _sweep_due(self) -> bool:
        return time.monotonic() - self._swept >= self.config.lease / 4

    def _wait(self) -> tuple[bool, bool]:
        """Until woken by a request, stopped or (when polling) a sweep is due: (woken,
        polling)."""
        with self._cv:
            timeout = self.config.lease / 4 if self._polling else None
            self._cv.wait_for(
                lambda: self._woken or self._stop.is_set() or (self._polling and self._sweep_due()),
                timeout,
            )
            woken, self._woken = self._woken, False
            return woken, self._polling

    def _pass(self, sweep: bool) -> None:
        with self._cv:
            seen = self._submitted
        try:
            if sweep:
                self.sweep()
            self.drain()
        except FeedpipeError as exc:
            LOG.warning("form requests wait in the store: %s", exc)
        except Exception:
            LOG.exception("form requests wait in the store")
        finally:
            with self._cv:
                self._finished = max(self._finished, seen)
                self._cv.notify_all()
