"""The digest planner: pure functions deciding who is due and which posts each edition holds."""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from feedpipe.digests.cadence import decide, is_due, local_instant, next_due, next_send_after
from feedpipe.digests.model import DEFAULT_RULES, Plan, PlannedEdition, Rules
from feedpipe.model import Advance, DigestPost, DigestSection, EditionContent, Post, Subscriber
from feedpipe.model import SubscriberStatus as Status

PostLoader = Callable[[Sequence[int]], Mapping[int, Post]]
# A section layout: (category key, post ids) pairs; key "" holds posts without a category.
Layout = tuple[tuple[str, tuple[int, ...]], ...]
OTHER_TITLE = "More posts"
OTHER_SLUG = "more"
__all__ = ["is_due", "local_instant", "next_send_after", "plan", "preview_edition"]


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


def layout_key(layout: Layout, render_key: str = "", more: int = 0) -> str:
    """Edition key: sha256 of the section layout (and "N more"), and of what renders it
    (`render_key`, the renderer's fingerprint of templates and settings): a template change
    makes new editions."""
    data = json.dumps([layout, more] if more else layout, separators=(",", ":")).encode()
    if render_key:
        data += b"\0" + render_key.encode()
    return hashlib.sha256(data).hexdigest()


def eligible(sub: Subscriber, post: DigestPost, rules: Rules) -> bool:
    """New to `sub`: published after they subscribed, available after their watermark, not
    back catalogue (first seen long after its date), in a category they chose."""
    chosen = not sub.categories or not set(sub.categories).isdisjoint(post.categories)
    return (
        chosen
        and post.published > sub.created_at
        and post.available_at > sub.watermark
        and not post.backdated(rules.backdated)
    )


GroupKey = tuple[tuple[str, ...], int, int]  # (categories, first new post, publication floor)


class PostView:
    """One run's deliverable posts, and each subscriber's new ones (shared by groups)."""

    def __init__(self, posts: Iterable[DigestPost], now: datetime, rules: Rules) -> None:
        self.ready = [p for p in deliverable(posts, now) if not p.backdated(rules.backdated)]
        self.cutoffs = [p.available_at for p in self.ready]
        self.published = sorted(p.published for p in self.ready)
        self._pending: dict[GroupKey, tuple[DigestPost, ...]] = {}

    def key(self, sub: Subscriber) -> GroupKey:
        start = bisect_right(self.cutoffs, sub.watermark)
        return sub.categories, start, bisect_right(self.published, sub.created_at)

    def pending(self, key: GroupKey) -> tuple[DigestPost, ...]:
        """The posts new to a group, by availability (`eligible` for each of its members)."""
        found = self._pending.get(key)
        if found is None:
            categories, start, low = key
            floor = self.published[low - 1] if low else None
            chosen = set(categories)
            found = self._pending[key] = tuple(
                p
                for p in self.ready[start:]
                if (floor is None or p.published > floor)
                and (not chosen or not chosen.isdisjoint(p.categories))
            )
        return found


def capped(posts: Sequence[DigestPost], max_posts: int) -> tuple[list[DigestPost], int]:
    """The newest `max_posts` posts and how many more there are."""
    if len(posts) <= max_posts:
        return list(posts), 0
    newest = sorted(posts, key=lambda p: (p.published, p.id), reverse=True)
    return newest[:max_posts], len(posts) - max_posts


MEMO_LIMIT = 100_000  # decisions remembered between pages (few distinct schedules in practice)


class Planner:
    """One run at `now` over subscribers page by page: each page gets its editions and moves;
    decisions, layouts, posts and edition contents are shared between pages (the decision
    memo is bounded), so planning a million subscribers holds one page at a time."""

    def __init__(
        self,
        posts: Iterable[DigestPost],
        now: datetime,
        load_posts: PostLoader,
        render_key: str | Callable[[], str] = "",
        rules: Rules = DEFAULT_RULES,
    ) -> None:
        # The key may be given as a function: it is asked for at the first edition made, so a
        # run with nothing due never builds the renderer that computes it (an idle `send`).
        self.now, self.rules, self._render_key = now, rules, render_key
        self.view = PostView(posts, now, rules)
        self._load = load_posts
        self._posts: dict[int, Post] = {}
        self._memo: dict[tuple[object, ...], tuple[Advance, int] | None] = {}
        self._due: dict[tuple[object, ...], datetime] = {}
        self._layouts: dict[tuple[GroupKey, int], tuple[Layout, int]] = {}
        self._contents: dict[tuple[Layout, int], EditionContent] = {}

    def plan(self, subscribers: Iterable[Subscriber]) -> Plan:
        """The editions and moves of these subscribers (one page, or all of them)."""
        subscribers = list(subscribers)
        by_layout, advances = self.decisions(subscribers)
        due = self.next_due(subscribers, advances)
        return Plan(self.now, self.editions(by_layout), advances, next_due=due)

    def decisions(
        self, subscribers: Iterable[Subscriber]
    ) -> tuple[dict[tuple[Layout, int], list[int]], dict[int, Advance]]:
        """Every active subscriber's move at `now`, and who is sent which (layout, "N more")."""
        by_layout: dict[tuple[Layout, int], list[int]] = defaultdict(list)
        advances: dict[int, Advance] = {}
        view, memo = self.view, self._memo
        for sub in subscribers:
            if sub.status is not Status.ACTIVE:
                continue
            group = view.key(sub)
            memo_key = (*_schedule_key(sub), sub.watermark, group)
            if memo_key not in memo:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                memo[memo_key] = decide(sub, view.pending(group), self.now, self.rules)
            decided = memo[memo_key]
            if decided is None:
                continue
            advance, count = decided
            advances[sub.id] = advance
            if count:
                by_layout[self._layout(sub, group, count)].append(sub.id)
        return by_layout, advances

    def next_due(
        self, subscribers: Iterable[Subscriber], advances: Mapping[int, Advance]
    ) -> dict[int, datetime]:
        """The new `next_due` of the active subscribers whose stored one differs from it (the
        slot cursor of those who move is their advance's)."""
        out: dict[int, datetime] = {}
        memo = self._due
        for sub in subscribers:
            if sub.status is not Status.ACTIVE:
                continue
            moved = advances.get(sub.id)
            cursor = sub.cursor if moved is None else moved.cursor
            key = (sub.frequency, sub.weekday, sub.send_time, sub.timezone, sub.month_day, cursor)
            due = memo.get(key)
            if due is None:
                if len(memo) >= MEMO_LIMIT:
                    memo.clear()
                due = memo[key] = next_due(sub, cursor)
            if due != sub.next_due_at:
                out[sub.id] = due
        return out

    def _layout(self, sub: Subscriber, group: GroupKey, count: int) -> tuple[Layout, int]:
        shown = self._layouts.get((group, count))
        if shown is None:
            kept, more = capped(self.view.pending(group)[:count], self.rules.max_posts)
            shown = self._layouts[group, count] = (section_layout(sub.categories, kept), more)
        return shown

    def editions(
        self, by_layout: Mapping[tuple[Layout, int], list[int]]
    ) -> tuple[PlannedEdition, ...]:
        """The editions of these layouts, most recipients first; posts not yet loaded are."""
        missing = {p for shown in by_layout if shown not in self._contents for p in _ids(shown)}
        missing -= self._posts.keys()
        if missing:
            self._posts.update(self._load(sorted(missing)))
        editions = [
            PlannedEdition(self._content(shown), tuple(sorted(ids)))
            for shown, ids in by_layout.items()
        ]
        editions.sort(key=lambda e: (-len(e.subscriber_ids), e.key))
        return tuple(editions)

    def _content(self, shown: tuple[Layout, int]) -> EditionContent:
        found = self._contents.get(shown)
        if found is None:
            layout, more = shown
            found = self._contents[shown] = edition_content(
                layout, self._posts, self.render_key, more
            )
        return found

    @property
    def render_key(self) -> str:
        if callable(self._render_key):
            self._render_key = self._render_key()
        return self._render_key


def _ids(shown: tuple[Layout, int]) -> Iterator[int]:
    return (i for _, ids in shown[0] for i in ids)


def _schedule_key(sub: Subscriber) -> tuple[object, ...]:
    return (
        sub.frequency,
        sub.weekday,
        sub.send_time,
        sub.timezone,
        sub.month_day,
        sub.min_posts,
        sub.max_wait,
        sub.cursor,
    )


def edition_content(
    layout: Layout, posts: Mapping[int, Post], render_key: str = "", more: int = 0
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
    key = layout_key(layout, render_key, more)
    return EditionContent(key=key, sections=tuple(sections), more=more)


def plan(
    subscribers: Iterable[Subscriber],
    posts: Iterable[DigestPost],
    now: datetime,
    load_posts: PostLoader,
    render_key: str = "",
    rules: Rules = DEFAULT_RULES,
) -> Plan:
    """Plan one run at `now`: editions (shared by identical layouts) and how subscribers move.

    A sent or empty subscriber's watermark moves to `now` (instant: `now - instant_delay`);
    held and late ones keep it. `load_posts` is called once, with the posts editions use;
    `render_key` (the renderer's fingerprint) is part of every edition key. (`Planner` plans
    the same page by page.)
    """
    return Planner(posts, now, load_posts, render_key, rules).plan(subscribers)


def preview_edition(
    sub: Subscriber,
    posts: Iterable[DigestPost],
    now: datetime,
    load_posts: PostLoader,
    rules: Rules = DEFAULT_RULES,
) -> EditionContent | None:
    """What `sub` would get if a digest went out at `now`, whatever their schedule."""
    view = PostView(posts, now, rules)
    kept, more = capped(view.pending(view.key(sub)), rules.max_posts)
    layout = section_layout(sub.categories, kept)
    if not layout:
        return None
    return Planner((), now, load_posts, rules=rules).editions({(layout, more): [sub.id]})[0].content
