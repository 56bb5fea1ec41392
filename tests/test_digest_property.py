"""Hypothesis: over any timeline of posts, cadences and planner runs, each post reaches a reader
once (listed, or counted in "and N more"), and no back catalogue ever does."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feedpipe.digests.cadence import next_event
from feedpipe.digests.model import Rules
from feedpipe.digests.plan import eligible, plan
from feedpipe.model import (
    LAST_DAY,
    DigestPost,
    Frequency,
    Post,
    Subscriber,
    SubscriberStatus,
    Term,
    TermKind,
)

START = datetime(2026, 3, 20, tzinfo=UTC)  # spans the spring DST change in Europe and America
SPAN_MINUTES = 20 * 24 * 60
CATEGORIES = ("go", "python", "rust")
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "America/New_York")

minutes = st.integers(min_value=0, max_value=SPAN_MINUTES)


@st.composite
def subscribers(draw: st.DrawFn, sub_id: int) -> Subscriber:
    created = START + timedelta(minutes=draw(minutes))
    if draw(st.integers(0, 3)) == 0:  # a long-time reader: older than any imported post
        created = START - timedelta(days=800)
    held = draw(st.integers(0, 3)) == 0
    return Subscriber(
        id=sub_id,
        email=f"s{sub_id}@example.com",
        name=None,
        status=SubscriberStatus.ACTIVE,
        categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES), unique=True, max_size=2))),
        frequency=draw(st.sampled_from(Frequency)),
        weekday=draw(st.integers(0, 6)),
        send_time=time(draw(st.integers(0, 23)), draw(st.sampled_from([0, 15, 30, 59]))),
        timezone=draw(st.sampled_from(ZONES)),
        created_at=created,
        confirmed_at=created,
        unsubscribed_at=None,
        watermark=created,
        last_digest_at=None,
        month_day=draw(st.sampled_from([1, 15, 28, LAST_DAY])),
        min_posts=draw(st.integers(2, 4)) if held else 1,
        max_wait=timedelta(hours=draw(st.integers(1, 24 * 10))),
    )


@st.composite
def posts(draw: st.DrawFn, post_id: int) -> DigestPost:
    seen = START + timedelta(minutes=draw(minutes))
    # Some are scheduled (published later), some backdated by an import (far earlier).
    published = seen + timedelta(hours=draw(st.sampled_from([-24 * 400, *range(-72, 73, 6)])))
    return DigestPost(
        id=post_id,
        first_seen_at=seen,
        published=published,
        draft=draw(st.integers(0, 9)) == 0,
        removed=draw(st.integers(0, 9)) == 0,
        categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES), unique=True, max_size=3))),
    )


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Subscriber], list[DigestPost], list[datetime], Rules]:
    n_subs = draw(st.integers(1, 4))
    n_posts = draw(st.integers(0, 25))
    subs = [draw(subscribers(i)) for i in range(n_subs)]
    items = [draw(posts(i)) for i in range(n_posts)]
    runs = sorted({START + timedelta(minutes=m) for m in draw(st.lists(minutes, max_size=60))})
    rules = Rules(
        max_posts=draw(st.integers(1, 30)),
        instant_delay=timedelta(minutes=draw(st.sampled_from([0, 5, 30]))),
        late_after=timedelta(hours=draw(st.sampled_from([1, 6, 48]))),
    )
    return subs, items, runs, rules


def full(ref: DigestPost) -> Post:
    cats = tuple(Term(TermKind.CATEGORY, k, k, k) for k in ref.categories)
    return Post(
        ref.id, f"g{ref.id}", f"p{ref.id}", "https://x/", "t", "", "", ref.published, None,
        cats, (), None, None, None, None, ref.draft, "", ref.first_seen_at,
    )  # fmt: skip


def wanted(sub: Subscriber, post: DigestPost, rules: Rules) -> bool:
    """New to a subscriber: published after they subscribed, not back catalogue, chosen."""
    chosen = not sub.categories or set(sub.categories) & set(post.categories)
    fresh = post.published > sub.created_at and not post.backdated(rules.backdated)
    return bool(chosen) and fresh and not post.draft and not post.removed


def waiting(sub: Subscriber, items: list[DigestPost], rules: Rules) -> list[DigestPost]:
    """Posts still to come to `sub` (future ones too), by availability."""
    ok = [p for p in items if eligible(sub, p, rules) and not p.draft and not p.removed]
    return sorted(ok, key=lambda p: (p.available_at, p.id))


@settings(max_examples=120, deadline=None)
@given(timelines())
def test_every_post_is_delivered_exactly_once(
    timeline: tuple[list[Subscriber], list[DigestPost], list[datetime], Rules],
) -> None:
    """Whatever the cadence, min_posts, late runs (missed slots) and max_posts: every new post
    reaches each reader once, listed or counted in "and N more"; no old post ever does."""
    subs, items, runs, rules = timeline
    by_id = {p.id: full(p) for p in items}

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        return {i: by_id[i] for i in ids}

    state = {s.id: s for s in subs}
    delivered: dict[int, Counter[int]] = {s.id: Counter() for s in subs}
    summarised: Counter[int] = Counter()

    def run(now: datetime) -> None:
        existing = [s for s in state.values() if s.created_at <= now]
        result = plan(existing, [p for p in items if p.first_seen_at <= now], now, load, "", rules)
        for edition in result.editions:
            ids = [p.id for section in edition.content.sections for p in section.posts]
            assert len(ids) == len(set(ids)) and len(ids) <= rules.max_posts
            assert all(by_id[i].published <= now and by_id[i].first_seen_at <= now for i in ids)
            for sub_id in edition.subscriber_ids:
                delivered[sub_id].update(ids)
                summarised[sub_id] += edition.content.more
        for sub_id, adv in result.advances.items():
            old = state[sub_id]
            state[sub_id] = replace(
                old, watermark=adv.watermark or old.watermark, last_digest_at=adv.cursor
            )

    for now in runs:
        run(now)
    now = max(runs, default=START)
    for _ in range(2000):  # then a worker that never misses a slot, until nothing is left
        left = [s for s in state.values() if waiting(s, items, rules)]
        if not left:
            break
        now = min(next_event(s, waiting(s, items, rules), now, rules) for s in left)
        run(now)
    else:
        raise AssertionError("posts still waiting after 2000 runs")
    for sub in subs:
        assert max(delivered[sub.id].values(), default=1) == 1  # never in two digests
        expected = {p.id for p in items if wanted(sub, p, rules)}
        assert set(delivered[sub.id]) <= expected  # nothing old, nothing foreign
        assert len(delivered[sub.id]) + summarised[sub.id] == len(expected)  # nothing missed


@settings(max_examples=120, deadline=None)
@given(timelines())
def test_planning_only_those_due_by_next_due_plans_the_same(
    timeline: tuple[list[Subscriber], list[DigestPost], list[datetime], Rules],
) -> None:
    """A fill reads only subscribers whose stored next_due is unknown or has come (and stores
    the plan's new ones): at every run it decides exactly what planning everyone decides."""
    subs, items, runs, rules = timeline
    by_id = {p.id: full(p) for p in items}

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        return {i: by_id[i] for i in ids}

    state = {s.id: s for s in subs}

    def run(now: datetime) -> None:
        existing = [s for s in state.values() if s.created_at <= now]
        ready = [p for p in items if p.first_seen_at <= now]
        everyone = plan(existing, ready, now, load, "", rules)
        due = [s for s in existing if s.next_due_at is None or s.next_due_at <= now]
        read = plan(due, ready, now, load, "", rules)
        assert read.advances == everyone.advances
        assert [(e.key, e.subscriber_ids) for e in read.editions] == [
            (e.key, e.subscriber_ids) for e in everyone.editions
        ]
        for sub_id, adv in everyone.advances.items():
            old = state[sub_id]
            state[sub_id] = replace(
                old, watermark=adv.watermark or old.watermark, last_digest_at=adv.cursor
            )
        for sub_id, next_at in read.next_due.items():
            state[sub_id] = replace(state[sub_id], next_due_at=next_at)

    for now in runs:
        run(now)
    now = max(runs, default=START)
    for _ in range(50):  # then runs at the very instants a plan may act (slots, posts out)
        now = min(next_event(s, waiting(s, items, rules), now, rules) for s in state.values())
        run(now)
