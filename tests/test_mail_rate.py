"""RateLimiter with an injected clock: per-second bucket, hour budget, halving and recovery."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from feedpipe.mail.rate import HALVE_INTERVAL, MIN_RATE, RECOVER_INTERVAL, RateLimiter


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the limiter sleeps (or the test says so)."""

    now: float = 1000.0
    slept: float = 0.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def limiter(
    clock: FakeTime, per_second: float | None = None, per_hour: int | None = None
) -> RateLimiter:
    return RateLimiter(per_second, per_hour, monotonic=clock.monotonic, sleep=clock.sleep)


def take(rate: RateLimiter, count: int) -> None:
    async def run() -> None:
        for _ in range(count):
            await rate.acquire()

    asyncio.run(run())


def test_unlimited_never_sleeps() -> None:
    clock = FakeTime()
    take(limiter(clock), 10_000)
    assert clock.slept == 0.0


def test_per_second_limit_paces_after_a_short_burst() -> None:
    clock = FakeTime()
    take(limiter(clock, per_second=100), 1010)  # burst of 10, then 1000 at 100/s
    assert abs(clock.slept - 10.0) < 0.01


def test_hour_budget_is_never_exceeded_in_any_hour() -> None:
    clock = FakeTime()
    rate = limiter(clock, per_hour=50)
    stamps: list[float] = []

    async def run() -> None:
        for _ in range(160):
            await rate.acquire()
            stamps.append(clock.now)
            clock.now += 7.0  # a message every 7 s unless held back

    asyncio.run(run())
    for index, start in enumerate(stamps):
        in_hour = [s for s in stamps[index:] if s < start + 3600]
        assert len(in_hour) <= 50
    assert stamps[-1] - stamps[0] < 4 * 3600  # but it does go on, hour after hour


def test_throttling_halves_the_configured_rate_once_per_interval() -> None:
    clock = FakeTime()
    rate = limiter(clock, per_second=200)
    rate.throttled()
    rate.throttled()  # the same event (replies from several connections at once)
    assert rate.rate == 100
    clock.now += HALVE_INTERVAL
    rate.throttled()
    assert rate.rate == 50


def test_rate_recovers_gradually_then_fully() -> None:
    clock = FakeTime()
    rate = limiter(clock, per_second=200)
    rate.throttled()
    seen: list[float] = []
    for _ in range(5):
        clock.now += RECOVER_INTERVAL
        take(rate, 1)
        assert rate.rate is not None
        seen.append(rate.rate)
    assert seen[0] == 125 and seen == sorted(seen) and seen[-1] == 200


def test_slow_down_without_a_limit_starts_from_the_measured_rate() -> None:
    clock = FakeTime()
    rate = limiter(clock)

    async def run() -> None:
        for _ in range(400):  # 400/s for two seconds
            await rate.acquire()
            clock.now += 1 / 200

    asyncio.run(run())
    rate.throttled()
    assert rate.rate is not None and 90 <= rate.rate <= 110
    clock.now += 10 * RECOVER_INTERVAL
    take(rate, 1)
    assert rate.rate is None  # fully recovered: unlimited again


def test_never_below_the_minimum_rate() -> None:
    clock = FakeTime()
    rate = limiter(clock, per_second=4)
    for _ in range(20):
        rate.throttled()
        clock.now += HALVE_INTERVAL
    assert rate.rate == MIN_RATE
