"""In-memory sliding-window rate limiter with an injectable monotonic clock."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

Monotonic = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `limit` events per `window` seconds."""

    limit: int
    window: float


class RateLimiter:
    """Counts events per key in a sliding window; forgets the least recently used keys past
    `max_keys` so memory stays bounded under a flood of distinct keys."""

    def __init__(self, rate: Rate, clock: Monotonic = time.monotonic, max_keys: int = 50_000):
        self.rate = rate
        self._clock = clock
        self._max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record one event for `key`: None if allowed, else seconds until one would be."""
        now = self._clock()
        with self._lock:
            hits = self._window(key, now)
            if len(hits) >= self.rate.limit:
                return max(hits[0] + self.rate.window - now, 0.001)
            hits.append(now)
            return None

    def _window(self, key: str, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
            if len(self._hits) > self._max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        while hits and hits[0] <= now - self.rate.window:
            hits.popleft()
        return hits
