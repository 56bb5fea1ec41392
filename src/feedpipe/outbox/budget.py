"""The configured send limits as one budget in the store, shared by every worker and `send`."""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from feedpipe.clock import Clock
from feedpipe.mail.rate import give_back, reserve
from feedpipe.store import Store

CHUNK_SECONDS = 0.25  # slots reserved per store transaction: this many seconds of sending
MAX_CHUNK = 50
HOUR_CHUNK = 8  # with an hour limit only
Sleep = Callable[[float], Awaitable[None]]


def budget_key(transport_name: str) -> str:
    return f"rate.{transport_name}"


@dataclass
class SharedBudget:
    """Hands out send slots (wall-clock times) reserved from the store a few at a time.

    `acquire` waits for this process's next slot; False when the hour budget is spent (then
    `resume_at` says when it frees up). `close` gives unused slots back to the hour budget.
    """

    store: Store
    key: str
    clock: Clock
    per_second: float | None
    per_hour: int | None
    sleep: Sleep = asyncio.sleep
    slots: deque[float] = field(default_factory=deque)
    resume_at: datetime | None = None

    def __post_init__(self) -> None:
        self.lock = asyncio.Lock()

    @property
    def chunk(self) -> int:
        if self.per_second is None:
            return min(HOUR_CHUNK, self.per_hour or HOUR_CHUNK)
        return max(1, min(MAX_CHUNK, math.floor(self.per_second * CHUNK_SECONDS)))

    async def acquire(self) -> bool:
        """Wait until one more message may be sent; False when the budget is spent."""
        async with self.lock:
            if self.resume_at is not None:
                return False
            if not self.slots:
                now = self.clock.now().timestamp()
                change = partial(
                    reserve, wanted=self.chunk, now=now,
                    per_second=self.per_second, per_hour=self.per_hour,
                )  # fmt: skip
                grant = await asyncio.to_thread(self.store.update_meta, self.key, change)
                if grant.count == 0:
                    assert grant.retry_at is not None
                    self.resume_at = datetime.fromtimestamp(grant.retry_at, UTC)
                    return False
                self.slots.extend(grant.times())
            at = self.slots.popleft()
        wait = at - self.clock.now().timestamp()
        if wait > 0:
            await self.sleep(wait)
        return True

    def close(self) -> None:
        """Give the slots reserved but not used back to the hour budget."""
        if self.slots and self.per_hour is not None:
            unused = list(self.slots)
            now = self.clock.now().timestamp()
            self.store.update_meta(self.key, partial(give_back, unused=unused, now=now))
        self.slots.clear()
