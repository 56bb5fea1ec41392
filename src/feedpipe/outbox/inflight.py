"""What a dispatcher has in flight: leases it renews, rows its connections took, and results
recorded a small group at a time as the server answers (never after the whole claim)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from feedpipe.clock import Clock
from feedpipe.model import Decision, RecordReport
from feedpipe.store import Store

RECORD_GROUP = 32  # results recorded per transaction at most before connections wait
RECORD_INTERVAL = 0.02  # seconds a result may wait for others to share its transaction
# a connection waits for its answer's commit: the others this long at most to share it
WAITING_COMPANY = 0.001
HEARTBEATS_PER_LEASE = 4  # leases are renewed this often within one lease


@dataclass
class InFlight:
    """Claimed rows of one dispatcher until their results are recorded.

    Every row claimed is `held` and its lease renewed every lease / HEARTBEATS_PER_LEASE;
    a row whose lease was taken over anyway is `lost` and not sent. A connection (the task
    that calls `take` and `ready`) `take`s a row (waiting while `group` answers in all, or
    one of a finished connection's, are not committed), sends its envelope and content but
    for the final `.` while its last answer is being recorded, then `ready` waits for that
    commit and marks the row `sending` (in the next transaction); `answered` queues its
    result. So each connection has at most one message the server may have accepted and
    feedpipe not recorded, and after a crash at most `connections` are sent again (the
    resend bound); `sending` rows are at most as many. Answers arriving together still share
    one transaction.
    """

    store: Store
    owner: str
    clock: Clock
    lease: timedelta
    bounce_limit: int
    group: int = RECORD_GROUP
    interval: float = RECORD_INTERVAL
    on_recorded: Callable[[RecordReport], None] | None = None
    monotonic: Callable[[], float] = time.monotonic
    held: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)
    taken: list[int] = field(default_factory=list)
    results: list[Decision] = field(default_factory=list)
    unrecorded: int = 0  # answered, not yet committed (includes the transaction under way)
    closing: bool = False
    dead: bool = False  # the recorder has stopped (closed, or the store failed)
    settling: int = 0  # callers of `settle` waiting: record at once
    waiting: int = 0  # connections waiting for their last answer's commit: record at once
    # the connection (task) that took each row, and each connection's answers not committed
    takers: dict[int, Any] = field(default_factory=dict)
    open: Counter[Any] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.wake = asyncio.Event()
        self.full = asyncio.Event()  # half a group is waiting: record without delay
        self.room = asyncio.Condition()
        self.renewed = self.monotonic()

    def hold(self, ids: Iterable[int]) -> None:
        self.held.update(ids)

    async def take(self, outbox_id: int) -> bool:
        """A connection is about to send this row: wait for room, then note which connection
        took it (its answer will count as that connection's); False when the lease was lost."""
        await self._wait_for(self._room)
        if self.dead or outbox_id in self.lost:
            return False
        task = asyncio.current_task()
        if task is not None:
            self.takers[outbox_id] = task
        return True

    async def ready(self, outbox_id: int) -> bool:
        """The calling connection may let the server accept this row's message: its last
        answer is committed (then the row becomes `sending`). False when recording has
        stopped or the lease was lost."""
        task = asyncio.current_task()
        await self._wait_for(lambda: not self.open.get(task))
        if self.dead or outbox_id in self.lost:
            return False
        self.taken.append(outbox_id)
        return True

    async def _wait_for(self, free: Callable[[], bool]) -> None:
        """Until `free()` or the recorder stops; a waiting connection has it record soon."""
        if self.dead or free():
            return
        self.waiting += 1
        self.wake.set()  # an idle recorder: record now; one waiting for company: soon
        asyncio.get_running_loop().call_later(WAITING_COMPANY, self.full.set)
        try:
            async with self.room:
                await self.room.wait_for(lambda: self.dead or free())
        finally:
            self.waiting -= 1

    def _room(self) -> bool:
        """Whether another row may be taken: fewer than `group` answers wait for their commit,
        and none of a connection that has finished (its slot's next task counts as it)."""
        if self.unrecorded >= self.group:
            return False
        return not any(n and t.done() for t, n in self.open.items())

    async def settle(self) -> None:
        """Wait until every result queued so far is committed (or recording failed)."""
        self.settling += 1
        self.wake.set()
        try:
            async with self.room:
                await self.room.wait_for(lambda: self.dead or self.unrecorded == 0)
        finally:
            self.settling -= 1

    def answered(self, decisions: Sequence[Decision]) -> None:
        """Queue results for the next transaction (on the event loop's thread)."""
        for decision in decisions:
            task = self.takers.get(decision.outbox_id)
            if task is not None:
                self.open[task] += 1
        self.results.extend(decisions)
        self.unrecorded += len(decisions)
        self.wake.set()
        if len(self.results) >= self.group // 2:
            self.full.set()

    async def run(self) -> None:
        """Record and renew until `close()` and nothing is left to record; a failure (the
        store) stops every `take` and `settle`, then propagates."""
        try:
            await self._loop()
        finally:
            self.dead = True
            async with self.room:
                self.room.notify_all()

    async def _loop(self) -> None:
        beat = self.lease.total_seconds() / HEARTBEATS_PER_LEASE
        while not (self.closing and not self.results and not self.taken):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), max(beat, 0.01))
            company = 0.0 if self.closing or self.settling else self.interval
            if self.waiting:
                company = min(company, WAITING_COMPANY)
            if self.results and company and len(self.results) < self.group // 2:
                with contextlib.suppress(TimeoutError):  # let others share the transaction
                    await asyncio.wait_for(self.full.wait(), company)
            self.wake.clear()
            self.full.clear()
            if self.results or self.taken:
                await self.flush()
            if self.monotonic() - self.renewed >= beat:
                await self.renew()

    def close(self) -> None:
        self.closing = True
        self.wake.set()

    async def flush(self) -> None:
        """One transaction: the rows taken since the last one become `sending`, results land."""
        results, self.results = self.results, []
        done = {d.outbox_id for d in results}
        taken = [i for i in self.taken if i not in done]  # finished ones skip `sending`
        self.taken = []
        record = self.store.record_outbox
        now = self.clock.now()
        report = await asyncio.to_thread(record, self.owner, results, now, self.bounce_limit, taken)
        self.held.difference_update(d.outbox_id for d in results)
        async with self.room:
            self.unrecorded -= len(results)
            for decision in results:
                task = self.takers.pop(decision.outbox_id, None)
                if task is not None:
                    self.open[task] -= 1
            self.open = +self.open  # drop the connections with nothing open
            self.room.notify_all()
        if self.on_recorded is not None:
            self.on_recorded(report)

    async def renew(self) -> None:
        """The heartbeat: extend the lease of every row still held; note the ones lost."""
        self.renewed = self.monotonic()
        ids = sorted(self.held - self.lost)
        if not ids:
            return
        now = self.clock.now()
        kept = await asyncio.to_thread(self.store.renew_outbox, self.owner, ids, now, self.lease)
        self.lost.update(set(ids) - kept)
