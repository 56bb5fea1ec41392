"""Hypothesis: over any timeline of posts and planner runs, each post reaches a reader once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from feedpipe.digests.plan import plan
from feedpipe.model import DigestPost, Frequency, Post, Subscriber, SubscriberStatus, Term, TermKind

START = datetime(2026, 3, 20, tzinfo=UTC)  # spans the spring DST change in Europe and America
SPAN_MINUTES = 20 * 24 * 60
CATEGORIES = ("go", "python", "rust")
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata", "America/St_Johns", "America/New_York")

minutes = st.integers(min_value=0, max_value=SPAN_MINUTES)


@st.composite
def subscribers(draw: st.DrawFn, sub_id: int) -> Subscriber:
    created = START + timedelta(minutes=draw(minutes))
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
    )


@st.composite
def posts(draw: st.DrawFn, post_id: int) -> DigestPost:
    seen = START + timedelta(minutes=draw(minutes))
    published = seen + timedelta(hours=draw(st.integers(-72, 72)))  # some are scheduled
    return DigestPost(
        id=post_id,
        first_seen_at=seen,
        published=published,
        draft=draw(st.integers(0, 9)) == 0,
        removed=draw(st.integers(0, 9)) == 0,
        categories=tuple(draw(st.lists(st.sampled_from(CATEGORIES), unique=True, max_size=3))),
    )


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Subscriber], list[DigestPost], list[datetime]]:
    n_subs = draw(st.integers(1, 4))
    n_posts = draw(st.integers(0, 25))
    subs = [draw(subscribers(i)) for i in range(n_subs)]
    items = [draw(posts(i)) for i in range(n_posts)]
    runs = sorted({START + timedelta(minutes=m) for m in draw(st.lists(minutes, max_size=60))})
    return subs, items, runs


def full(ref: DigestPost) -> Post:
    cats = tuple(Term(TermKind.CATEGORY, k, k, k) for k in ref.categories)
    return Post(
        ref.id, f"g{ref.id}", f"p{ref.id}", "https://x/", "t", "", "", ref.published, None,
        cats, (), None, None, None, None, ref.draft, "", ref.first_seen_at,
    )  # fmt: skip


def wanted(sub: Subscriber, post: DigestPost, until: datetime) -> bool:
    chosen = not sub.categories or set(sub.categories) & set(post.categories)
    # New to a subscriber once both seen and published, after they subscribed.
    fresh = sub.created_at < max(post.first_seen_at, post.published) <= until
    return bool(chosen) and fresh and not post.draft and not post.removed


@settings(max_examples=150, deadline=None)
@given(timelines())
def test_every_post_is_delivered_exactly_once(
    timeline: tuple[list[Subscriber], list[DigestPost], list[datetime]],
) -> None:
    subs, items, runs = timeline
    by_id = {p.id: full(p) for p in items}

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        return {i: by_id[i] for i in ids}

    final = START + timedelta(minutes=SPAN_MINUTES, days=9)  # everyone is due by then
    state = {s.id: s for s in subs}
    delivered: dict[int, Counter[int]] = {s.id: Counter() for s in subs}
    for now in [*runs, final]:
        existing = [s for s in state.values() if s.created_at <= now]
        result = plan(existing, [p for p in items if p.first_seen_at <= now], now, load)
        for edition in result.editions:
            ids = [p.id for section in edition.content.sections for p in section.posts]
            assert len(ids) == len(set(ids))
            assert all(by_id[i].published <= now and by_id[i].first_seen_at <= now for i in ids)
            for sub_id in edition.subscriber_ids:
                delivered[sub_id].update(ids)
        for sub_id, mark in result.watermarks.items():
            state[sub_id] = replace(state[sub_id], watermark=mark, last_digest_at=mark)
    for sub in subs:
        assert max(delivered[sub.id].values(), default=1) == 1  # never in two digests
        expected = {p.id for p in items if wanted(sub, p, final)}
        assert set(delivered[sub.id]) == expected  # never missed, nothing foreign
