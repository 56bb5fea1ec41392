"""Every cadence on fixed clocks: DST gaps and folds, half-hour zones, min_posts, late_after,
instant mail, max_posts and the back-catalogue rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedpipe.digests.cadence import next_event, next_send_after
from feedpipe.digests.model import Rules
from feedpipe.digests.plan import PostView, eligible, plan
from feedpipe.model import LAST_DAY, DigestPost, Frequency, Outcome, Post, Subscriber
from tests.test_digest_plan import full_post, post, subscriber, utc

RULES = Rules()


@dataclass(frozen=True)
class Send:
    at: datetime
    sub_id: int
    post_ids: tuple[int, ...]
    more: int


def walk(
    subs: Sequence[Subscriber],
    posts: Sequence[DigestPost],
    start: datetime,
    end: datetime,
    step: timedelta = timedelta(minutes=5),
    rules: Rules = RULES,
) -> tuple[list[Send], dict[int, Subscriber], list[tuple[datetime, int, Outcome]]]:
    """Run the planner every `step` like the worker, moving subscribers as a fill would."""
    by_id = {p.id: full_post(p) for p in posts}

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        return {i: by_id[i] for i in ids}

    state = {s.id: s for s in subs}
    sends: list[Send] = []
    moves: list[tuple[datetime, int, Outcome]] = []
    now = start
    while now <= end:
        seen = [p for p in posts if p.first_seen_at <= now]
        result = plan(list(state.values()), seen, now, load, rules=rules)
        for edition in result.editions:
            ids = tuple(p.id for s in edition.content.sections for p in s.posts)
            sends += [Send(now, i, ids, edition.content.more) for i in edition.subscriber_ids]
        for sub_id, adv in result.advances.items():
            moves.append((now, sub_id, adv.outcome))
            mark = adv.watermark or state[sub_id].watermark
            state[sub_id] = replace(state[sub_id], watermark=mark, last_digest_at=adv.cursor)
        now += step
    return sends, state, moves


def cadence(frequency: Frequency, zone: str, at: time, day: datetime) -> Subscriber:
    """A subscriber of `frequency` whose weekly/monthly day is `day` (a local date)."""
    midnight = day.replace(tzinfo=UTC)
    created = midnight - timedelta(days=40)
    return subscriber(
        frequency=frequency,
        timezone=zone,
        send_time=at,
        weekday=day.weekday(),
        month_day=day.day,
        created_at=created,
        watermark=created,
        last_digest_at=midnight - timedelta(days=1, hours=12),
    )


# (zone, local send day, local send time, the UTC instant of that send). In a gap the send moves
# on by the gap's length; in a fold it goes at the first occurrence.
CASES = [
    ("Europe/Berlin", datetime(2026, 3, 29), time(2, 30), utc(2026, 3, 29, 1, 30)),  # gap
    ("Europe/Berlin", datetime(2026, 3, 29), time(8, 0), utc(2026, 3, 29, 6, 0)),
    ("Europe/Berlin", datetime(2026, 10, 25), time(2, 30), utc(2026, 10, 25, 0, 30)),  # fold
    ("Asia/Kolkata", datetime(2026, 3, 2), time(8, 0), utc(2026, 3, 2, 2, 30)),
    ("America/St_Johns", datetime(2026, 3, 8), time(2, 30), utc(2026, 3, 8, 6, 0)),  # gap
    ("America/St_Johns", datetime(2026, 11, 1), time(0, 30), utc(2026, 11, 1, 3, 0)),  # fold
    ("Australia/Lord_Howe", datetime(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 45)),  # gap
    ("Australia/Lord_Howe", datetime(2026, 4, 5), time(1, 45), utc(2026, 4, 4, 14, 45)),  # fold
]
SCHEDULED = (Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY)


@pytest.mark.parametrize("frequency", SCHEDULED)
@pytest.mark.parametrize(("zone", "day", "at", "expected"), CASES)
def test_each_scheduled_cadence_sends_once_at_the_local_time(
    frequency: Frequency, zone: str, day: datetime, at: time, expected: datetime
) -> None:
    window = timedelta(hours=20)
    sub = replace(cadence(frequency, zone, at, day), last_digest_at=expected - window)
    posts = [post(1, expected - window)]
    sends, _, _ = walk([sub], posts, expected - window, expected + window)
    assert [s.at for s in sends] == [expected]
    assert sends[0].post_ids == (1,)


@pytest.mark.parametrize(("zone", "day", "at", "expected"), CASES)
def test_a_daily_send_happens_once_a_day_across_the_change(
    zone: str, day: datetime, at: time, expected: datetime
) -> None:
    sub = cadence(Frequency.DAILY, zone, at, day)
    start = expected - timedelta(days=2)
    posts = [post(i, start + timedelta(hours=6 * i)) for i in range(1, 17)]
    sends, _, _ = walk([sub], posts, start, start + timedelta(days=4), timedelta(minutes=15))
    local_days = [s.at.astimezone(ZoneInfo(zone)).date() for s in sends]
    assert len(local_days) == len(set(local_days)) >= 3
    assert expected in [s.at for s in sends]


@pytest.mark.parametrize(("zone", "day", "at", "expected"), CASES)
def test_instant_mail_is_instant_delay_minutes_of_real_time_after_publishing(
    zone: str, day: datetime, at: time, expected: datetime
) -> None:
    """Published in the gap or the fold: five real minutes later, not an hour off."""
    sub = cadence(Frequency.INSTANT, zone, time(12, 0), day)
    posts = [post(1, expected + timedelta(minutes=1))]
    window = timedelta(hours=3)
    sends, _, _ = walk([sub], posts, expected - window, expected + window, timedelta(minutes=1))
    assert [s.at for s in sends] == [expected + timedelta(minutes=6)]


def test_monthly_on_day_28_and_on_the_last_day() -> None:
    on_28 = subscriber(frequency=Frequency.MONTHLY, month_day=28, timezone="Europe/Berlin")
    last = replace(on_28, month_day=LAST_DAY)
    assert next_send_after(on_28, utc(2026, 2, 1)) == utc(2026, 2, 28, 7)
    assert next_send_after(last, utc(2026, 2, 1)) == utc(2026, 2, 28, 7)
    assert next_send_after(last, utc(2026, 2, 28, 7)) == utc(2026, 3, 31, 6)  # CEST by then
    assert next_send_after(last, utc(2026, 12, 31, 8)) == utc(2027, 1, 31, 7)
    assert next_send_after(on_28, utc(2028, 2, 28, 7)) == utc(2028, 3, 28, 6)


def test_describe_reads_like_a_person_wrote_it() -> None:
    monthly = subscriber(frequency=Frequency.MONTHLY, month_day=1, timezone="Europe/Berlin")
    assert monthly.schedule.describe() == "monthly on day 1 at 08:00 Europe/Berlin"
    assert (
        replace(monthly, month_day=LAST_DAY)
        .schedule.describe()
        .startswith("monthly on the last day at 08:00")
    )
    assert subscriber(frequency=Frequency.INSTANT).schedule.describe(5) == "instant (within 5 min)"
    held = subscriber(frequency=Frequency.WEEKLY, min_posts=3, max_wait=timedelta(days=14))
    assert held.schedule.describe() == (
        "weekly on Monday at 08:00 UTC, once 3 posts are new (at most 14d)"
    )


# --- min_posts and max_wait -------------------------------------------------------------------


def test_min_posts_holds_the_digest_until_enough_posts_are_new() -> None:
    start = utc(2026, 3, 1, 9)
    sub = subscriber(min_posts=3, created_at=start, watermark=start, last_digest_at=start)
    posts = [
        post(1, utc(2026, 3, 1, 12)),
        post(2, utc(2026, 3, 2, 12)),
        post(3, utc(2026, 3, 3, 9)),
    ]
    sends, _, moves = walk([sub], posts, start, utc(2026, 3, 5, 9), timedelta(hours=1))
    assert [(s.at, s.post_ids) for s in sends] == [(utc(2026, 3, 4, 8), (3, 2, 1))]
    held = [at for at, _, outcome in moves if outcome is Outcome.HELD]
    assert held == [utc(2026, 3, 2, 8), utc(2026, 3, 3, 8)]


def test_max_wait_sends_what_there_is_at_the_next_slot() -> None:
    start = utc(2026, 3, 1, 9)
    sub = subscriber(
        min_posts=5, max_wait=timedelta(days=2), created_at=start, watermark=start,
        last_digest_at=start,
    )  # fmt: skip
    posts = [post(1, utc(2026, 3, 1, 10))]
    sends, _, _ = walk([sub], posts, start, utc(2026, 3, 6), timedelta(hours=1))
    assert [(s.at, s.post_ids) for s in sends] == [(utc(2026, 3, 4, 8), (1,))]  # waited > 2 days


# --- instant mail ----------------------------------------------------------------------------


def test_posts_of_one_sync_go_in_one_instant_message_after_the_delay() -> None:
    start = utc(2026, 3, 1, 9)
    sub = subscriber(frequency=Frequency.INSTANT, created_at=start, watermark=start)
    synced = utc(2026, 3, 1, 10, 1)
    posts = [
        post(1, synced, published=utc(2026, 3, 1, 9, 59)),
        post(2, synced, published=datetime(2026, 3, 1, 10, 0, 30, tzinfo=UTC)),
        post(3, utc(2026, 3, 1, 10, 30)),
    ]
    sends, state, _ = walk([sub], posts, start, utc(2026, 3, 1, 12), timedelta(minutes=1))
    assert [(s.at, sorted(s.post_ids)) for s in sends] == [
        (utc(2026, 3, 1, 10, 6), [1, 2]),
        (utc(2026, 3, 1, 10, 35), [3]),
    ]
    assert state[1].watermark == utc(2026, 3, 1, 10, 30)  # the last send minus the delay


def test_an_instant_post_is_not_sent_before_the_delay_so_an_edit_is_caught() -> None:
    start = utc(2026, 3, 1, 9)
    sub = subscriber(frequency=Frequency.INSTANT, created_at=start, watermark=start)
    posts = [post(1, utc(2026, 3, 1, 10))]
    early, _, _ = walk([sub], posts, start, utc(2026, 3, 1, 10, 4), timedelta(minutes=1))
    assert early == []
    rules = replace(RULES, instant_delay=timedelta(minutes=15))
    sends, _, _ = walk([sub], posts, start, utc(2026, 3, 1, 11), timedelta(minutes=1), rules)
    assert [s.at for s in sends] == [utc(2026, 3, 1, 10, 15)]


def test_stale_instant_mail_waits_for_the_morning_not_3_am() -> None:
    """The worker was down from 20:00 to 03:00: the 20:00 post is older than late_after, so it
    goes with the next message: the send-time catch-up at 08:00."""
    start = utc(2026, 3, 1, 0)
    sub = subscriber(frequency=Frequency.INSTANT, created_at=start, watermark=start)
    posts = [post(1, utc(2026, 3, 1, 20))]
    _, state, moves = walk([sub], posts, utc(2026, 3, 2, 3), utc(2026, 3, 2, 3))
    assert moves == [(utc(2026, 3, 2, 3), 1, Outcome.LATE)]
    sends, _, _ = walk(list(state.values()), posts, utc(2026, 3, 2, 3, 5), utc(2026, 3, 3))
    assert [(s.at, s.post_ids) for s in sends] == [(utc(2026, 3, 2, 8), (1,))]


# --- deadlines -------------------------------------------------------------------------------


def test_a_slot_missed_by_more_than_late_after_merges_into_the_next_one() -> None:
    last = utc(2026, 3, 1, 8)
    sub = subscriber(last_digest_at=last, watermark=last, timezone="Europe/Berlin")
    posts = [post(1, utc(2026, 3, 1, 12)), post(2, utc(2026, 3, 2, 12))]
    # The worker is down from 07:00 (local 08:00 send) to 14:00 UTC on 2 March: 7 h late.
    sends, _, moves = walk([sub], posts, utc(2026, 3, 2, 14), utc(2026, 3, 3, 12))
    assert moves[0] == (utc(2026, 3, 2, 14), 1, Outcome.LATE)
    assert [(s.at, sorted(s.post_ids)) for s in sends] == [(utc(2026, 3, 3, 7), [1, 2])]


def test_a_slot_missed_by_less_than_late_after_still_goes() -> None:
    last = utc(2026, 3, 1, 8)
    sub = subscriber(last_digest_at=last, watermark=last)
    sends, _, _ = walk(
        [sub], [post(1, utc(2026, 3, 1, 12))], utc(2026, 3, 2, 13, 55), utc(2026, 3, 2, 14)
    )
    assert [s.at for s in sends] == [utc(2026, 3, 2, 13, 55)]


def test_a_send_carries_its_deadline_and_the_watermark_it_rolls_back_to() -> None:
    last = utc(2026, 3, 1, 8)
    sub = subscriber(last_digest_at=last, watermark=last)
    now = utc(2026, 3, 2, 8, 3)
    result = plan(
        [sub],
        [post(1, utc(2026, 3, 1, 12))],
        now,
        lambda ids: {i: full_post(post(i, last)) for i in ids},
    )
    advance = result.advances[1]
    assert advance.outcome is Outcome.SENT
    assert (advance.since, advance.deadline) == (last, utc(2026, 3, 2, 14))


# --- how many posts, and which ---------------------------------------------------------------


def test_max_posts_caps_a_digest_and_counts_the_rest() -> None:
    start = utc(2026, 3, 1, 0)
    sub = subscriber(created_at=start, watermark=start)
    posts = [post(i, start + timedelta(minutes=10 * i)) for i in range(1, 41)]
    sends, _, _ = walk([sub], posts, utc(2026, 3, 2, 8), utc(2026, 3, 2, 8))
    assert len(sends) == 1
    assert sends[0].post_ids == tuple(range(40, 10, -1))  # the 30 newest, newest first
    assert sends[0].more == 10


def test_back_catalogue_is_never_new() -> None:
    created = utc(2026, 3, 1, 12)
    sub = subscriber(created_at=created, watermark=created)
    seen = utc(2026, 3, 1, 20)  # one sync after they subscribed
    old = post(1, seen, published=utc(2019, 5, 1))  # an old site imported
    before = post(2, seen, published=utc(2026, 3, 1, 11))  # published before they subscribed
    new = post(3, seen, published=utc(2026, 3, 1, 13))
    scheduled = post(4, seen, published=utc(2026, 3, 5, 9))  # published after they subscribed
    assert [eligible(sub, p, RULES) for p in (old, before, new, scheduled)] == [
        False, False, True, True
    ]  # fmt: skip
    long_time = subscriber(created_at=utc(2010, 1, 1), watermark=created)
    assert not eligible(long_time, old, RULES)  # first seen 7 years after its date: backdated
    sends, _, _ = walk(
        [sub], [old, before, new, scheduled], seen, utc(2026, 3, 6, 12), timedelta(hours=1)
    )
    assert [(s.at, s.post_ids) for s in sends] == [
        (utc(2026, 3, 2, 8), (3,)),
        (utc(2026, 3, 6, 8), (4,)),
    ]


def test_next_event_is_never_later_than_a_send() -> None:
    start = utc(2026, 3, 1, 0)
    subs = [
        subscriber(1, frequency=Frequency.INSTANT, created_at=start, watermark=start),
        subscriber(2, frequency=Frequency.MONTHLY, month_day=LAST_DAY, created_at=start,
                   watermark=start),
        subscriber(3, min_posts=2, max_wait=timedelta(hours=30), created_at=start, watermark=start),
    ]  # fmt: skip
    posts = [post(1, utc(2026, 3, 1, 10, 2)), post(2, utc(2026, 3, 4, 23, 58))]
    sends, _, moves = walk(subs, posts, start, utc(2026, 4, 2), timedelta(minutes=10))
    assert {s.sub_id for s in sends} == {1, 2, 3}
    view = PostView(posts, utc(2026, 5, 1), RULES)
    for sub in subs:
        pending = view.pending(view.key(sub))
        first = min(at for at, i, _ in moves if i == sub.id)
        assert next_event(sub, pending, start, RULES) <= first


def test_a_post_inside_the_delay_waits_for_its_own_message() -> None:
    start = utc(2026, 3, 1, 9)
    sub = subscriber(frequency=Frequency.INSTANT, created_at=start, watermark=start)
    posts = [post(1, utc(2026, 3, 1, 10)), post(2, utc(2026, 3, 1, 10, 3))]
    sends, _, _ = walk([sub], posts, start, utc(2026, 3, 1, 11), timedelta(minutes=1))
    assert [(s.at, s.post_ids) for s in sends] == [
        (utc(2026, 3, 1, 10, 5), (1,)),
        (utc(2026, 3, 1, 10, 8), (2,)),
    ]
