"""Send slots of every cadence in the subscriber's own zone, and what the planner does at one."""

from __future__ import annotations

import calendar
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from feedpipe.digests.model import Rules
from feedpipe.model import (
    LAST_DAY,
    Advance,
    DigestPost,
    Frequency,
    Outcome,
    Subscriber,
    SubscriberStatus,
)

# A slot further back than this is long missed: look for the last one from here (> 1 month).
CATCH_UP = timedelta(days=62)


class HasSchedule(Protocol):
    """Anything with a send schedule (a Subscriber, a Schedule)."""

    @property
    def frequency(self) -> Frequency: ...
    @property
    def weekday(self) -> int: ...
    @property
    def send_time(self) -> time: ...
    @property
    def timezone(self) -> str: ...
    @property
    def month_day(self) -> int: ...


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at `at` in `zone` as aware UTC (fold=0: a gap time moves on by the gap's length,
    a repeated time is its first occurrence)."""
    return datetime.combine(day, at, tzinfo=zone).replace(fold=0).astimezone(UTC)


def month_send_day(year: int, month: int, month_day: int) -> date:
    """The send day of a month: `month_day` (1..28), or its last day for LAST_DAY."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if month_day == LAST_DAY else min(month_day, last))


def _send_days(sub: HasSchedule, start: date) -> Iterator[date]:
    """Candidate send days from `start` on, enough to hold the next slot after `start + 1 day`.
    Instant subscribers have a daily slot at their send time: it sends what waited too long."""
    if sub.frequency is Frequency.MONTHLY:
        year, month = start.year, start.month
        for _ in range(3):
            yield month_send_day(year, month, sub.month_day)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return
    weekly = sub.frequency is Frequency.WEEKLY
    for offset in range(9):
        day = start + timedelta(days=offset)
        if not weekly or day.weekday() == sub.weekday:
            yield day


def next_send_after(sub: HasSchedule, after: datetime) -> datetime:
    """The first local send instant of `sub` strictly after `after` (aware UTC)."""
    zone = ZoneInfo(sub.timezone)
    start = after.astimezone(zone).date() - timedelta(days=1)
    for day in _send_days(sub, start):
        instant = local_instant(day, sub.send_time, zone)
        if instant > after:
            return instant
    raise AssertionError("unreachable: a send instant exists within any 9 days or 3 months")


def last_slot(sub: HasSchedule, cursor: datetime, now: datetime) -> datetime | None:
    """The latest send instant in (cursor, now], None when there is none."""
    slot = next_send_after(sub, max(cursor, now - CATCH_UP))
    if slot > now:
        return None
    while (following := next_send_after(sub, slot)) <= now:
        slot = following
    return slot


def next_due(sub: HasSchedule, cursor: datetime) -> datetime:
    """The earliest instant at which `decide` may act for `sub` once their slot cursor is
    `cursor`: their first send slot after it (`decide` acts at a slot, and the latest one in
    (cursor, now] is never before the first), or for instant mail the cursor itself (a post
    may come out at any moment). A fill reads only subscribers due by this at its `now`."""
    if sub.frequency is Frequency.INSTANT:
        return cursor
    return next_send_after(sub, cursor)


def is_due(sub: Subscriber, now: datetime) -> bool:
    """Active, and a send instant has passed since their last digest (or since subscribing)."""
    return sub.status is SubscriberStatus.ACTIVE and next_send_after(sub, sub.cursor) <= now


def ready_count(pending: Sequence[DigestPost], sub: Subscriber, now: datetime, rules: Rules) -> int:
    """How many of `pending` (sorted by availability) a message at `now` may hold: all of them,
    or for instant mail those out for at least instant_delay (so an edit is caught)."""
    if sub.frequency is not Frequency.INSTANT:
        return len(pending)
    cutoff = now - rules.instant_delay
    return bisect_right(pending, cutoff, key=lambda p: p.available_at)


def _slot(
    sub: Subscriber, ready: Sequence[DigestPost], now: datetime, rules: Rules
) -> datetime | None:
    """The slot the planner acts on at `now`: the last scheduled one since the cursor; for
    instant mail the newest post coming out, the daily catch-up slot or min_posts' max_wait."""
    scheduled = last_slot(sub, sub.cursor, now)
    if sub.frequency is not Frequency.INSTANT:
        return scheduled
    if not ready:
        return None
    events = [ready[-1].available_at + rules.instant_delay, scheduled]
    if sub.min_posts > 1:
        events.append(ready[0].available_at + sub.max_wait)
    due = [e for e in events if e is not None and sub.cursor < e <= now]
    return max(due, default=None)


def decide(
    sub: Subscriber, pending: Sequence[DigestPost], now: datetime, rules: Rules
) -> tuple[Advance, int] | None:
    """What happens to an active subscriber at `now` (None: nothing yet), and how many of
    `pending` (their new posts, sorted by availability) the digest holds.

    A slot missed by more than late_after is merged into the next one (the posts stay new);
    fewer than min_posts new posts are held for the next slot unless the oldest waited
    max_wait; with nothing new the watermark moves and nothing is sent."""
    count = ready_count(pending, sub, now, rules)
    slot = _slot(sub, pending[:count], now, rules)
    if slot is None:
        return None
    since = sub.watermark
    if not count:
        return Advance(Outcome.EMPTY, now, now, since), 0
    if now - slot > rules.late_after:
        return Advance(Outcome.LATE, now, None, since), 0
    if count < sub.min_posts and pending[0].available_at > now - sub.max_wait:
        return Advance(Outcome.HELD, now, None, since), 0
    instant = sub.frequency is Frequency.INSTANT
    watermark = now - rules.instant_delay if instant else now
    return Advance(Outcome.SENT, now, watermark, since, slot + rules.late_after), count


def next_event(
    sub: Subscriber, pending: Sequence[DigestPost], after: datetime, rules: Rules
) -> datetime:
    """The earliest instant after `after` at which `decide` may act for `sub`, given the posts
    that will be new to them (`pending`, future ones included): never later than a real one."""
    start = max(after, sub.cursor)
    scheduled = next_send_after(sub, start)
    if sub.frequency is not Frequency.INSTANT:
        return scheduled
    events = [p.available_at + rules.instant_delay for p in pending]
    if sub.min_posts > 1 and pending:
        events.append(pending[0].available_at + sub.max_wait)
    return min([scheduled, *(e for e in events if e > start)])
