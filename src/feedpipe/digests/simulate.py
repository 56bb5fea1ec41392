"""The planner run over a period on a simulated clock, subscribers moved in memory: what a worker
that never misses a plan would send, without sending or writing anything."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from feedpipe.digests.cadence import next_event
from feedpipe.digests.model import DEFAULT_RULES, Plan, Rules
from feedpipe.digests.plan import PostLoader, PostView, plan
from feedpipe.model import DigestPost, Subscriber
from feedpipe.model import SubscriberStatus as Status


def ticks_from(start: datetime, step: timedelta, at_or_after: datetime) -> datetime:
    """The first worker tick (`start + k * step`) at or after `at_or_after`."""
    if at_or_after <= start:
        return start
    return start + step * -((start - at_or_after) // step)


def first_event(
    subs: Iterable[Subscriber], view: PostView, after: datetime, rules: Rules
) -> datetime | None:
    """The earliest instant after `after` at which any of `subs` may be planned."""
    memo: dict[tuple[object, ...], datetime] = {}
    for sub in subs:
        group = view.key(sub)
        key = (sub.frequency, sub.weekday, sub.send_time, sub.timezone, sub.month_day,
               sub.min_posts, sub.max_wait, sub.cursor, group)  # fmt: skip
        if key not in memo:
            memo[key] = next_event(sub, view.pending(group), after, rules)
    return min(memo.values(), default=None)


def simulate(
    subscribers: Sequence[Subscriber],
    posts: Sequence[DigestPost],
    start: datetime,
    end: datetime,
    step: timedelta,
    load_posts: PostLoader,
    rules: Rules = DEFAULT_RULES,
    render_key: str = "",
) -> Iterator[Plan]:
    """Each plan a worker planning at `start`, `start + step`, ... up to `end` would make that
    moves someone (ticks where nothing can happen are skipped: `next_event` says when). Posts
    published in the future come out when they are due, as they will."""
    state = {s.id: s for s in subscribers if s.status is Status.ACTIVE}
    horizon = PostView(posts, end, rules)  # every post that comes out by `end`
    now = start
    while now <= end and state:
        seen = [p for p in posts if p.first_seen_at <= now]
        result = plan(list(state.values()), seen, now, load_posts, render_key, rules)
        if result.advances:
            yield result
        for sub_id, advance in result.advances.items():
            old = state[sub_id]
            mark = old.watermark if advance.watermark is None else advance.watermark
            state[sub_id] = replace(old, watermark=mark, last_digest_at=advance.cursor)
        event = first_event(state.values(), horizon, now, rules)
        if event is None:
            return
        now = ticks_from(start, step, max(event, now + step))
