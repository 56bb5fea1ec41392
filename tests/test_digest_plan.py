"""Digest planner on fixed clocks: send times across DST and zones, post selection, editions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedpipe.digests.model import Plan
from feedpipe.digests.plan import is_due, layout_key, next_send_after, plan, section_layout
from feedpipe.model import DigestPost, Frequency, Post, Subscriber, SubscriberStatus, Term, TermKind

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def subscriber(sub_id: int = 1, **changes: object) -> Subscriber:
    base = Subscriber(
        id=sub_id,
        email=f"s{sub_id}@example.com",
        name=None,
        status=SubscriberStatus.ACTIVE,
        categories=(),
        frequency=Frequency.DAILY,
        weekday=0,
        send_time=time(8, 0),
        timezone="UTC",
        created_at=T0,
        confirmed_at=T0,
        unsubscribed_at=None,
        watermark=T0,
        last_digest_at=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def post(
    post_id: int,
    seen: datetime,
    cats: Sequence[str] = (),
    published: datetime | None = None,
    draft: bool = False,
    removed: bool = False,
) -> DigestPost:
    return DigestPost(post_id, seen, published or seen, draft, removed, tuple(cats))


def full_post(ref: DigestPost) -> Post:
    cats = tuple(Term(TermKind.CATEGORY, k.title(), k, k) for k in ref.categories)
    return Post(
        id=ref.id,
        guid=f"g{ref.id}",
        slug=f"p{ref.id}",
        url=f"https://blog.example.com/p{ref.id}",
        title=f"Post {ref.id}",
        summary="",
        content_html="",
        published=ref.published,
        updated=None,
        categories=cats,
        tags=(),
        author=None,
        image=None,
        image_alt=None,
        reading_time=None,
        draft=ref.draft,
        content_hash="",
        first_seen_at=ref.first_seen_at,
    )


def run(subs: Sequence[Subscriber], posts: Sequence[DigestPost], now: datetime) -> Plan:
    by_id = {p.id: full_post(p) for p in posts}

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        return {i: by_id[i] for i in ids}

    return plan(subs, posts, now, load)


def post_ids_for(result: Plan, sub_id: int) -> list[int]:
    for edition in result.editions:
        if sub_id in edition.subscriber_ids:
            return [p.id for s in edition.content.sections for p in s.posts]
    return []


def walk_sends(sub: Subscriber, start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    """Run the due check every `step`; each time it is due, record it and move last_digest_at."""
    sends: list[datetime] = []
    now = start
    while now <= end:
        if is_due(sub, now):
            sends.append(now)
            sub = replace(sub, last_digest_at=now, watermark=now)
        now += step
    return sends


def local(instants: Sequence[datetime], zone: str) -> list[datetime]:
    return [i.astimezone(ZoneInfo(zone)) for i in instants]


# --- send times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (utc(2026, 3, 26), utc(2026, 4, 2)),  # spring forward: Sunday 29 March 2026
        (utc(2026, 10, 22), utc(2026, 10, 29)),  # fall back: Sunday 25 October 2026
    ],
)
def test_berlin_0800_both_sides_of_dst_minute_by_minute(start: datetime, end: datetime) -> None:
    sub = subscriber(timezone="Europe/Berlin", created_at=start, watermark=start)
    sends = walk_sends(sub, start, end, timedelta(minutes=1))
    days = [s.date() for s in local(sends, "Europe/Berlin")]
    assert [s.time() for s in local(sends, "Europe/Berlin")] == [time(8, 0)] * len(sends)
    assert days == [
        start.date() + timedelta(days=n) for n in range(len(days))
    ]  # none twice/skipped
    assert len(days) == 7


def test_berlin_utc_instants_shift_by_an_hour_at_the_change() -> None:
    start = utc(2026, 3, 28)
    sub = subscriber(timezone="Europe/Berlin", created_at=start, watermark=start)
    sends = walk_sends(sub, start, utc(2026, 3, 31), timedelta(hours=1))
    assert sends == [utc(2026, 3, 28, 7), utc(2026, 3, 29, 6), utc(2026, 3, 30, 6)]


def test_send_time_in_spring_forward_gap_sends_once() -> None:
    start = utc(2026, 3, 27)
    sub = subscriber(timezone="Europe/Berlin", send_time=time(2, 30), created_at=start)
    sends = walk_sends(sub, start, utc(2026, 3, 31), timedelta(minutes=1))
    assert utc(2026, 3, 29, 1, 30) in sends  # 02:30 does not exist → 03:30 CEST
    assert [s.date() for s in local(sends, "Europe/Berlin")] == [
        date(2026, 3, 27),
        date(2026, 3, 28),
        date(2026, 3, 29),
        date(2026, 3, 30),
    ]


def test_send_time_in_fall_back_repeat_sends_once_at_first_occurrence() -> None:
    start = utc(2026, 10, 24)
    sub = subscriber(timezone="Europe/Berlin", send_time=time(2, 30), created_at=start)
    sends = walk_sends(sub, start, utc(2026, 10, 27), timedelta(minutes=1))
    assert sends == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_next_send_after_gap_resolves_after_the_gap() -> None:
    sub = subscriber(timezone="Europe/Berlin", send_time=time(2, 30))
    assert next_send_after(sub, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1, 30)


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        ("Asia/Kolkata", utc(2026, 6, 1), utc(2026, 6, 1, 2, 30)),  # UTC+05:30
        ("America/St_Johns", utc(2026, 1, 10), utc(2026, 1, 10, 11, 30)),  # NST −03:30
        ("America/St_Johns", utc(2026, 7, 10), utc(2026, 7, 10, 10, 30)),  # NDT −02:30
    ],
)
def test_half_hour_zones(zone: str, after: datetime, expected: datetime) -> None:
    sub = subscriber(timezone=zone)
    assert next_send_after(sub, after) == expected
    sends = walk_sends(
        replace(sub, created_at=after), after, after + timedelta(days=3), timedelta(minutes=15)
    )
    assert sends[0] == expected
    assert [s - sends[0] for s in sends] == [timedelta(days=n) for n in range(3)]


def test_st_johns_across_its_spring_change() -> None:
    start = utc(2026, 3, 6)  # Newfoundland springs forward on Sunday 8 March 2026
    sub = subscriber(timezone="America/St_Johns", created_at=start)
    sends = walk_sends(sub, start, utc(2026, 3, 11), timedelta(minutes=5))
    assert [s.time() for s in local(sends, "America/St_Johns")] == [time(8, 0)] * 5


def test_weekly_on_the_wrong_weekday_is_not_due() -> None:
    monday = utc(2026, 3, 2, 8)
    sub = subscriber(frequency=Frequency.WEEKLY, weekday=0, last_digest_at=monday)
    assert not is_due(sub, utc(2026, 3, 3, 9))  # Tuesday after the send time
    assert not is_due(sub, utc(2026, 3, 8, 23, 59))  # Sunday
    assert is_due(sub, utc(2026, 3, 9, 8))  # next Monday 08:00


def test_weekly_uses_the_local_weekday() -> None:
    # Monday 08:00 in Kolkata is Monday 02:30 UTC; 08:00 Sunday UTC is not a Monday there.
    sub = subscriber(frequency=Frequency.WEEKLY, weekday=0, timezone="Asia/Kolkata")
    assert next_send_after(sub, utc(2026, 3, 7, 12)) == utc(2026, 3, 9, 2, 30)


def test_inactive_subscribers_are_never_due() -> None:
    for status in SubscriberStatus:
        sub = subscriber(status=status)
        assert is_due(sub, utc(2026, 3, 5)) is (status is SubscriberStatus.ACTIVE)


# --- what a digest holds ---------------------------------------------------------------------


def test_first_digest_has_no_back_catalogue() -> None:
    created = utc(2026, 3, 1, 12)
    sub = subscriber(created_at=created, watermark=created)
    posts = [post(1, utc(2026, 2, 20)), post(2, utc(2026, 3, 1, 11)), post(3, utc(2026, 3, 1, 20))]
    result = run([sub], posts, utc(2026, 3, 2, 8))
    assert post_ids_for(result, 1) == [3]


def test_nothing_new_sends_nothing_but_the_watermark_moves() -> None:
    sub = subscriber(last_digest_at=utc(2026, 3, 1, 8), watermark=utc(2026, 3, 1, 8))
    now = utc(2026, 3, 2, 8)
    result = run([sub], [post(1, utc(2026, 2, 1))], now)
    assert result.editions == ()
    assert result.watermarks == {1: now}


def test_catch_up_after_three_missed_days_is_one_digest() -> None:
    last = utc(2026, 3, 1, 8)
    sub = subscriber(last_digest_at=last, watermark=last)
    posts = [post(i, last + timedelta(days=i, hours=1)) for i in range(5)]
    now = utc(2026, 3, 4, 13)  # down for 2, 3 and 4 March 08:00; back within late_after
    result = run([sub], posts, now)
    assert len(result.editions) == 1
    assert sorted(post_ids_for(result, 1)) == [0, 1, 2, 3]  # post 4 is first seen on 5 March
    after = replace(sub, last_digest_at=now, watermark=now)
    assert not is_due(after, utc(2026, 3, 5, 7, 59))
    assert is_due(after, utc(2026, 3, 5, 8))


def test_drafts_removed_and_future_posts_are_left_out() -> None:
    now = utc(2026, 3, 2, 8)
    posts = [
        post(1, utc(2026, 3, 1, 9)),
        post(2, utc(2026, 3, 1, 9), draft=True),
        post(3, utc(2026, 3, 1, 9), removed=True),
        post(4, utc(2026, 3, 1, 9), published=utc(2026, 3, 5)),  # scheduled
        post(5, utc(2026, 3, 2, 9)),  # first seen after now
    ]
    result = run([subscriber()], posts, now)
    assert post_ids_for(result, 1) == [1]


def test_scheduled_post_arrives_in_the_digest_after_it_is_published() -> None:
    scheduled = post(4, utc(2026, 3, 1, 9), published=utc(2026, 3, 3, 12))
    sub = subscriber(last_digest_at=utc(2026, 3, 3, 8), watermark=utc(2026, 3, 3, 8))
    assert post_ids_for(run([sub], [scheduled], utc(2026, 3, 4, 8)), 1) == [4]


def test_post_in_two_chosen_categories_appears_once_under_its_first() -> None:
    sub = subscriber(categories=("rust", "python"))
    posts = [post(1, utc(2026, 3, 1, 9), ["python", "rust"]), post(2, utc(2026, 3, 1, 10), ["go"])]
    result = run([sub], posts, utc(2026, 3, 2, 8))
    (edition,) = result.editions
    assert [(s.slug, [p.id for p in s.posts]) for s in edition.content.sections] == [
        ("python", [1])
    ]


def test_sections_follow_chosen_order_or_alphabetical_with_more_posts_last() -> None:
    posts = [
        post(1, utc(2026, 3, 1, 9), ["rust"]),
        post(2, utc(2026, 3, 1, 10), ["go"]),
        post(3, utc(2026, 3, 1, 11)),
        post(4, utc(2026, 3, 1, 12), ["go"], published=utc(2026, 3, 1, 8)),
    ]
    assert section_layout(("rust", "go"), posts) == (("rust", (1,)), ("go", (2, 4)))
    assert section_layout((), posts) == (("go", (2, 4)), ("rust", (1,)), ("", (3,)))


def test_identical_layouts_share_one_edition() -> None:
    posts = [post(1, utc(2026, 3, 1, 9), ["rust"]), post(2, utc(2026, 3, 1, 10), ["go"])]
    subs = [
        subscriber(1, categories=("rust",)),
        subscriber(2, categories=("rust",), timezone="Asia/Kolkata"),
        subscriber(3, categories=("rust", "python")),  # other set, same post set and layout
        subscriber(4),
    ]
    result = run(subs, posts, utc(2026, 3, 2, 8))  # Kolkata 08:00 was 5.5 h ago: not late
    shared = {e.subscriber_ids: e for e in result.editions}
    assert set(shared) == {(1, 2, 3), (4,)}
    assert shared[(1, 2, 3)].key == layout_key((("rust", (1,)),))
    assert shared[(4,)].content.sections[0].title == "Go"
    assert result.recipient_count == 4


def test_not_due_subscribers_get_nothing_and_keep_their_watermark() -> None:
    sub = subscriber(last_digest_at=utc(2026, 3, 2, 8), watermark=utc(2026, 3, 2, 8))
    result = run([sub], [post(1, utc(2026, 3, 2, 9))], utc(2026, 3, 2, 12))
    assert result.editions == () and result.watermarks == {}


def test_loader_is_asked_only_for_posts_in_editions() -> None:
    asked: list[Sequence[int]] = []
    posts = [post(1, utc(2026, 3, 1, 9), ["rust"]), post(2, utc(2026, 3, 1, 9), ["go"])]

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        asked.append(ids)
        return {p.id: full_post(p) for p in posts if p.id in ids}

    plan([subscriber(categories=("rust",))], posts, utc(2026, 3, 2, 8), load)
    assert asked == [[1]]
