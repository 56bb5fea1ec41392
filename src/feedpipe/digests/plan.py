"""The digest planner: pure functions deciding who is due and which posts each edition holds."""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from feedpipe.digests.model import Plan, PlannedEdition
from feedpipe.model import DigestPost, DigestSection, EditionContent, Frequency, Post, Subscriber
from feedpipe.model import SubscriberStatus as Status

PostLoader = Callable[[Sequence[int]], Mapping[int, Post]]
# A section layout: (category key, post ids) pairs; key "" holds posts without a category.
Layout = tuple[tuple[str, tuple[int, ...]], ...]
OTHER_TITLE = "More posts"
OTHER_SLUG = "more"


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


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`day` at `at` in `zone` as aware UTC (fold=0: a gap time moves on by the gap's length,
    a repeated time is its first occurrence)."""
    return datetime.combine(day, at, tzinfo=zone).replace(fold=0).astimezone(UTC)


def next_send_after(sub: HasSchedule, after: datetime) -> datetime:
    """The first local send instant of `sub` strictly after `after` (aware UTC)."""
    zone = ZoneInfo(sub.timezone)
    start = after.astimezone(zone).date() - timedelta(days=1)
    weekly = sub.frequency is Frequency.WEEKLY
    for offset in range(9):
        day = start + timedelta(days=offset)
        if weekly and day.weekday() != sub.weekday:
            continue
        instant = local_instant(day, sub.send_time, zone)
        if instant > after:
            return instant
    raise AssertionError("unreachable: a send instant exists within any 9 days")


def is_due(sub: Subscriber, now: datetime) -> bool:
    """Active, and a send instant has passed since their last digest (or since subscribing)."""
    if sub.status is not Status.ACTIVE:
        return False
    return next_send_after(sub, sub.last_digest_at or sub.created_at) <= now


def deliverable(posts: Iterable[DigestPost], now: datetime) -> list[DigestPost]:
    """Posts a digest at `now` may hold, sorted by when they became available."""
    ok = [p for p in posts if not p.draft and not p.removed and p.available_at <= now]
    return sorted(ok, key=lambda p: (p.available_at, p.id))


def section_layout(categories: tuple[str, ...], posts: Sequence[DigestPost]) -> Layout:
    """Group `posts` by category: each post once, under its own first category the subscriber
    chose; sections in the chosen order, or alphabetical (then "More posts") for everything."""
    chosen = set(categories)
    buckets: dict[str, list[DigestPost]] = defaultdict(list)
    for post in posts:
        keys = [k for k in post.categories if not chosen or k in chosen]
        if keys:
            buckets[keys[0]].append(post)
        elif not chosen:
            buckets[""].append(post)
    order = list(categories) if chosen else [*sorted(k for k in buckets if k), ""]
    newest_first = {
        k: sorted(v, key=lambda p: (p.published, p.id), reverse=True) for k, v in buckets.items()
    }
    return tuple((k, tuple(p.id for p in newest_first[k])) for k in order if k in newest_first)


def layout_key(layout: Layout, render_key: str = "") -> str:
    """Edition key: sha256 of the section layout and of what renders it (`render_key`, the
    renderer's fingerprint of templates and settings): a template change makes new editions."""
    data = json.dumps(layout, separators=(",", ":")).encode()
    if render_key:
        data += b"\0" + render_key.encode()
    return hashlib.sha256(data).hexdigest()


def group_due(
    subscribers: Iterable[Subscriber], cutoffs: Sequence[datetime], now: datetime
) -> tuple[dict[tuple[tuple[str, ...], int], list[int]], dict[int, datetime]]:
    """Due subscribers grouped by (categories, index of first post newer than their watermark)."""
    groups: dict[tuple[tuple[str, ...], int], list[int]] = defaultdict(list)
    watermarks: dict[int, datetime] = {}
    due_memo: dict[tuple[object, ...], bool] = {}
    for sub in subscribers:
        if sub.status is not Status.ACTIVE:
            continue
        memo_key = (
            sub.frequency,
            sub.weekday,
            sub.send_time,
            sub.timezone,
            sub.last_digest_at or sub.created_at,
        )
        due = due_memo.get(memo_key)
        if due is None:
            due = due_memo[memo_key] = is_due(sub, now)
        if due:
            watermarks[sub.id] = now
            groups[(sub.categories, bisect_right(cutoffs, sub.watermark))].append(sub.id)
    return groups, watermarks


def plan_layouts(
    subscribers: Iterable[Subscriber], posts: Iterable[DigestPost], now: datetime
) -> tuple[dict[Layout, list[int]], dict[int, datetime]]:
    """Due subscribers by the section layout they get (empty layouts dropped), and watermarks."""
    ready = deliverable(posts, now)
    cutoffs = [p.available_at for p in ready]
    groups, watermarks = group_due(subscribers, cutoffs, now)
    by_layout: dict[Layout, list[int]] = defaultdict(list)
    for (categories, start), ids in groups.items():
        layout = section_layout(categories, ready[start:])
        if layout:
            by_layout[layout].extend(ids)
    return by_layout, watermarks


def edition_content(
    layout: Layout, posts: Mapping[int, Post], render_key: str = ""
) -> EditionContent:
    """The edition of a layout, with full posts and category names taken from the posts."""
    sections = []
    for key, ids in layout:
        full = tuple(posts[i] for i in ids)
        title, slug = OTHER_TITLE, OTHER_SLUG
        for term in (t for p in full for t in p.categories if t.key == key):
            title, slug = term.name, term.slug
            break
        sections.append(DigestSection(title=title, slug=slug, posts=full))
    return EditionContent(key=layout_key(layout, render_key), sections=tuple(sections))


def plan(
    subscribers: Iterable[Subscriber],
    posts: Iterable[DigestPost],
    now: datetime,
    load_posts: PostLoader,
    render_key: str = "",
) -> Plan:
    """Plan one run at `now`: editions (shared by identical layouts) and new watermarks.

    Every due active subscriber's watermark moves to `now`, also when nothing is new for
    them (then they get no edition). `load_posts` is called once, with the posts editions use;
    `render_key` (the renderer's fingerprint) is part of every edition key.
    """
    by_layout, watermarks = plan_layouts(subscribers, posts, now)
    wanted = sorted({i for layout in by_layout for _, ids in layout for i in ids})
    full = load_posts(wanted) if wanted else {}
    editions = [
        PlannedEdition(edition_content(layout, full, render_key), tuple(sorted(ids)))
        for layout, ids in by_layout.items()
    ]
    editions.sort(key=lambda e: (-len(e.subscriber_ids), e.key))
    return Plan(now=now, editions=tuple(editions), watermarks=watermarks)
