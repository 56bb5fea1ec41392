"""Subscribe requests handled after the reply: the request path does the same work whatever the
address's state (validate, enqueue), so its timing tells nothing about the address."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from feedpipe.errors import FeedpipeError
from feedpipe.subscriptions.fields import SubscribeInput

LOG = logging.getLogger("feedpipe.web")
MAX_WAITING = 10_000  # requests waiting at most; past it a request is refused like a rate limit
# A request that arrives at an idle queue is handled this long after it was queued: by then its
# reply is out, so the work its address needs never slows (and so never times) its own reply.
SETTLE_SECONDS = 0.01


@dataclass
class SubscribeIntake:
    """One background thread per web process runs `handle` on each accepted request, in order.

    Requests live in memory until handled (a fraction of a second): a crash of `feedpipe serve`
    loses those not yet handled — their visitors get no confirmation and subscribe again.
    """

    handle: Callable[[SubscribeInput], object]
    _queue: queue.Queue[SubscribeInput | None] = field(
        default_factory=lambda: queue.Queue(MAX_WAITING), init=False, repr=False
    )
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _start: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def submit(self, wanted: SubscribeInput) -> bool:
        """Queue `wanted` (constant time); False when the queue is full."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(wanted)
        except queue.Full:
            return False
        return True

    def join(self) -> None:
        """Wait until every request submitted so far has been handled (tests, shutdown)."""
        if self._thread is not None:
            self._queue.join()

    def close(self) -> None:
        """Handle what is waiting, then stop the thread."""
        with self._start:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="feedpipe-subscribe", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            if self._queue.empty():
                wanted = self._queue.get()
                time.sleep(SETTLE_SECONDS)
            else:
                wanted = self._queue.get()
            try:
                if wanted is None:
                    return
                self._handle(wanted)
            finally:
                self._queue.task_done()

    def _handle(self, wanted: SubscribeInput) -> None:
        try:
            self.handle(wanted)
        except FeedpipeError as exc:  # the visitor already has their reply: log it
            LOG.warning("subscribe request not handled: %s", exc)
        except Exception:  # last resort: the thread must live on
            LOG.exception("subscribe request failed")
