"""The one send-rate control: a per-second token bucket, an hour budget and adaptive slow-down on
throttling replies (per transport), and the configured limits as a budget shared through the
store by every process (`reserve`, `give_back`: pure functions over its stored JSON)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from feedpipe.mail.model import Delivery, Outcome

BURST_SECONDS = 0.1  # the per-second bucket holds this many seconds of sending
SLOT_SECONDS = 60.0  # the hour budget counts sends in one-minute slots
HOUR_SLOTS = 60
SLOT_MARGIN = 0.001  # seconds past a slot's end, so rounding never wakes us early
MIN_FACTOR = 1 / 64  # never slow down below 1/64 of the configured (or observed) rate
HALVE_INTERVAL = 1.0  # throttling replies within this many seconds count as one event
RECOVER_INTERVAL = 2.0  # every this many quiet seconds the rate grows by RECOVER_STEP
RECOVER_STEP = 1.25
MIN_RATE = 1.0  # messages per second an adaptive slow-down never goes below
EPSILON = 1e-9  # a token this close to whole counts (float rounding)
MIN_WINDOW = 0.1  # seconds: the shortest span a measured rate is taken over

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up."""

    rate: float
    capacity: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0 when it is)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1.0 - EPSILON else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


@dataclass(slots=True)
class HourBudget:
    """At most `limit` sends in any hour: counts per minute, a slot leaves after 61 minutes."""

    limit: int
    slots: deque[list[int]] = field(default_factory=deque)  # [minute index, count]
    total: int = 0

    def _expire(self, minute: int) -> None:
        while self.slots and self.slots[0][0] + HOUR_SLOTS < minute:
            self.total -= self.slots.popleft()[1]

    def wait(self, now: float) -> float:
        minute = int(now // SLOT_SECONDS)
        self._expire(minute)
        if self.total < self.limit:
            return 0.0
        return (self.slots[0][0] + HOUR_SLOTS + 1) * SLOT_SECONDS - now + SLOT_MARGIN

    def take(self, now: float) -> None:
        minute = int(now // SLOT_SECONDS)
        if self.slots and self.slots[-1][0] == minute:
            self.slots[-1][1] += 1
        else:
            self.slots.append([minute, 1])
        self.total += 1


@dataclass(slots=True)
class RateMeter:
    """The send rate of the last completed second (what a slow-down halves without a limit)."""

    window_start: float = 0.0
    count: int = 0
    last_rate: float = 0.0

    def tick(self, now: float) -> None:
        if now - self.window_start >= 1.0:
            elapsed = now - self.window_start
            self.last_rate = self.count / elapsed if self.window_start else 0.0
            self.window_start, self.count = now, 0
        self.count += 1

    def rate(self, now: float) -> float:
        """Messages per second lately (the current window counts as at least 0.1 s long)."""
        current = self.count / max(now - self.window_start, MIN_WINDOW) if self.count else 0.0
        return max(self.last_rate, current)


class RateLimiter:
    """Paces sends: `max_per_second`, `max_per_hour`, and halving on throttling replies.

    Throttling halves the rate (at most once per HALVE_INTERVAL); it then grows back by
    RECOVER_STEP every RECOVER_INTERVAL seconds without throttling. Without a configured
    per-second limit the first slow-down starts from the rate measured just before it,
    and the limit disappears again once it has fully recovered.
    """

    def __init__(
        self,
        max_per_second: float | None = None,
        max_per_hour: int | None = None,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.configured = max_per_second
        self.monotonic = monotonic
        self.sleep = sleep
        self.hour = HourBudget(max_per_hour) if max_per_hour else None
        self.base: float | None = max_per_second
        self.factor = 1.0
        self.changed = monotonic()
        self.meter = RateMeter()
        self.bucket: TokenBucket | None = None
        self._set_bucket(self.changed)

    @property
    def rate(self) -> float | None:
        """The current per-second limit (None: unlimited)."""
        return None if self.base is None else max(self.base * self.factor, MIN_RATE)

    @property
    def idle(self) -> bool:
        """True when nothing limits sending (then `acquire` need not be awaited)."""
        return self.bucket is None and self.hour is None and self.factor >= 1.0

    def _set_bucket(self, now: float) -> None:
        rate = self.rate
        if rate is None:
            self.bucket = None
            return
        capacity = max(1.0, rate * BURST_SECONDS)
        tokens = min(self.bucket.tokens, capacity) if self.bucket else capacity
        self.bucket = TokenBucket(rate, capacity, tokens, now)

    async def acquire(self) -> None:
        """Wait until one more message may be sent, and count it."""
        while True:
            now = self.monotonic()
            self._recover(now)
            delay = max(
                self.bucket.wait(now) if self.bucket else 0.0,
                self.hour.wait(now) if self.hour else 0.0,
            )
            if delay <= 0.0:
                break
            await self.sleep(delay)
        if self.bucket:
            self.bucket.take()
        if self.hour:
            self.hour.take(now)
        self.meter.tick(now)

    def throttled(self) -> None:
        """The server said it is throttling: halve the rate (once per HALVE_INTERVAL)."""
        now = self.monotonic()
        if self.factor < 1.0 and now - self.changed < HALVE_INTERVAL:
            return
        if self.base is None:
            self.base = max(self.meter.rate(now), MIN_RATE)
        self.factor = max(self.factor / 2, MIN_FACTOR)
        self.changed = now
        self._set_bucket(now)

    def observe(self, delivery: Delivery) -> None:
        """Feed back one delivery: a throttling reply slows the limiter down."""
        if delivery.outcome is Outcome.THROTTLED:
            self.throttled()

    def _recover(self, now: float) -> None:
        steps = int((now - self.changed) // RECOVER_INTERVAL)
        if self.factor >= 1.0 or steps < 1:
            return
        self.factor = min(1.0, self.factor * RECOVER_STEP**steps)
        self.changed += steps * RECOVER_INTERVAL
        if self.factor >= 1.0:
            self.base = self.configured
        self._set_bucket(now)


@dataclass(frozen=True, slots=True)
class Grant:
    """Send slots reserved from a shared budget: `count` messages, the first at `start`, one
    every `interval` seconds (epoch seconds); none left: `retry_at`, when the hour frees some."""

    start: float
    interval: float
    count: int
    retry_at: float | None = None

    def times(self) -> list[float]:
        return [self.start + i * self.interval for i in range(self.count)]


def _budget_state(raw: str | None) -> tuple[float, list[list[int]]]:
    """(the next free per-second slot, [[minute, sends], ...]) from the stored JSON."""
    if not raw:
        return 0.0, []
    data = json.loads(raw)
    return float(data.get("next", 0.0)), [[int(m), int(n)] for m, n in data.get("slots", [])]


def _budget_json(next_at: float, slots: list[list[int]]) -> str:
    return json.dumps({"next": round(next_at, 6), "slots": slots}, separators=(",", ":"))


def reserve(
    raw: str | None, wanted: int, now: float, per_second: float | None, per_hour: int | None
) -> tuple[str, Grant]:
    """Take up to `wanted` send slots from a budget shared by every process (stored as `raw`):
    spaced 1/per_second apart after the last slot anyone took, and at most per_hour sends in
    any hour (counted per minute, a minute leaves after 61). Returns the new state and grant."""
    next_at, slots = _budget_state(raw)
    minute = int(now // SLOT_SECONDS)
    slots = [s for s in slots if s[0] + HOUR_SLOTS >= minute]
    count = wanted
    retry_at = None
    if per_hour is not None:
        count = max(0, min(wanted, per_hour - sum(n for _, n in slots)))
        if count == 0:
            retry_at = (slots[0][0] + HOUR_SLOTS + 1) * SLOT_SECONDS + SLOT_MARGIN
    interval = 1.0 / per_second if per_second else 0.0
    start = max(now, next_at)
    if count:
        next_at = start + count * interval
        if slots and slots[-1][0] == minute:
            slots[-1][1] += count
        else:
            slots.append([minute, count])
    return _budget_json(next_at, slots), Grant(start, interval, count, retry_at)


def give_back(raw: str | None, unused: list[float], now: float) -> tuple[str, None]:
    """Return reserved slots that were not used (a run ended first) to the hour budget; the
    per-second spacing is not rewound."""
    next_at, slots = _budget_state(raw)
    left = len(unused)
    for slot in reversed(slots):
        took = min(left, slot[1])
        slot[1] -= took
        left -= took
    return _budget_json(next_at, [s for s in slots if s[1] > 0]), None
