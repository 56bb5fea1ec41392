"""The circuit breaker's pure transitions (clock injected) and its stored form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from feedpipe.mail import Delivery, Outcome
from feedpipe.outbox.breaker import Breaker, BreakerLimits, Gate

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LIMITS = BreakerLimits(streak=3, recipients=4)
REFUSED = "5.7.1 <digest@blog.example.com>: Sender address rejected: Access denied"


def reply(outcome: Outcome, n: int = 1) -> Delivery:
    codes = {Outcome.SENT: 250, Outcome.BLOCKED: 550, Outcome.FAILED: 550, Outcome.SOFT: 452}
    text = REFUSED if outcome is Outcome.BLOCKED else "whatever"
    return Delivery(n, outcome, codes.get(outcome), text)


def feed(breaker: Breaker, outcomes: list[Outcome], now: datetime = T0) -> Breaker:
    for n, outcome in enumerate(outcomes):
        breaker = breaker.observe(reply(outcome, n), f"r{n}@example.org", now, LIMITS)
    return breaker


def test_opens_after_the_streak_with_the_reply_and_what_to_fix() -> None:
    two = feed(Breaker(), [Outcome.BLOCKED] * 2)
    assert not two.is_open and two.streak == 2 and two.gate(T0) is Gate.OPEN_FOR_SENDING
    three = feed(two, [Outcome.BLOCKED])
    assert three.is_open and three.paused == f"550 {REFUSED}"
    assert "from_address" in three.fix
    assert three.since == T0 and three.gate(T0) is Gate.PAUSED


def test_a_message_sent_breaks_the_streak_other_replies_do_not() -> None:
    b = feed(Breaker(), [Outcome.BLOCKED, Outcome.BLOCKED, Outcome.SENT, Outcome.BLOCKED])
    assert not b.is_open and b.streak == 1
    b = feed(Breaker(), [Outcome.BLOCKED, Outcome.SOFT, Outcome.FAILED, Outcome.UNSENT] * 2)
    assert b.streak == 2  # neither a bounce nor a soft reply says the sender is fine


def test_opens_after_distinct_recipients_even_with_successes_between() -> None:
    b = Breaker()
    for n in range(3):
        b = b.observe(reply(Outcome.BLOCKED), f"r{n}@example.org", T0, LIMITS)
        b = b.observe(reply(Outcome.SENT), "ok@example.org", T0, LIMITS)
    assert not b.is_open and len(b.recent) == 3
    assert b.observe(reply(Outcome.BLOCKED), "r3@example.org", T0, LIMITS).is_open


def test_the_same_recipient_or_old_refusals_do_not_add_up() -> None:
    b = Breaker()
    for _ in range(6):
        b = b.observe(reply(Outcome.BLOCKED), "same@example.org", T0, LIMITS)
        b = b.observe(reply(Outcome.SENT), "ok@example.org", T0, LIMITS)
    assert not b.is_open
    for n in range(4):
        at = T0 + n * LIMITS.window
        b = b.observe(reply(Outcome.BLOCKED), f"r{n}@example.org", at, LIMITS)
        b = b.observe(reply(Outcome.SENT), "ok@example.org", at, LIMITS)
    assert not b.is_open


def test_probes_back_off_exponentially_and_one_success_closes() -> None:
    b = feed(Breaker(), [Outcome.BLOCKED] * 3)
    assert b.probe_at == T0 + LIMITS.first_probe
    now, delays = T0, []
    for _ in range(8):
        assert b.probe_at is not None
        now = b.probe_at
        assert b.gate(now - timedelta(seconds=1)) is Gate.PAUSED
        assert b.gate(now) is Gate.PROBE
        b = b.observe(reply(Outcome.BLOCKED), "probe@example.org", now, LIMITS)
        assert b.probe_at is not None and b.is_open
        delays.append(b.probe_at - now)
    assert delays[:3] == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8)]
    assert delays[-1] == LIMITS.max_probe
    assert b.probes == 8
    closed = b.observe(reply(Outcome.SENT), "probe@example.org", now, LIMITS)
    assert closed == Breaker() and closed.gate(now) is Gate.OPEN_FOR_SENDING


outcomes = st.lists(st.sampled_from(list(Outcome)), max_size=30)


@given(outcomes, st.integers(0, 10_000))
def test_stored_form_round_trips(seq: list[Outcome], minutes: int) -> None:
    b = feed(Breaker(), seq, T0 + timedelta(minutes=minutes))
    assert Breaker.from_json(b.to_json()) == b


@given(outcomes)
def test_never_opens_without_sender_or_policy_replies(seq: list[Outcome]) -> None:
    assert not feed(Breaker(), [o for o in seq if o is not Outcome.BLOCKED]).is_open


def test_unreadable_stored_value_is_a_closed_breaker() -> None:
    assert Breaker.from_json(None) == Breaker.from_json("{not json") == Breaker()
