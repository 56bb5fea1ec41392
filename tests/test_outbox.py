"""Outbox: fill idempotence, dispatcher state transitions (MemoryTransport, fixed clock), claims."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from datetime import timedelta
from email import message_from_bytes
from email.utils import parsedate_to_datetime
from pathlib import Path

from feedpipe.clock import FixedClock
from feedpipe.mail import MemoryTransport, Outcome
from feedpipe.model import Action, Decision, DispatchReport, OutboxState, SubscriberStatus
from feedpipe.outbox.dispatch import Dispatcher, DispatchOptions
from feedpipe.outbox.policy import backoff_bound
from feedpipe.store import Store
from tests.outbox_helpers import SENDER, T0, add_subscribers, edition, message_id_of, queue
from tests.outbox_helpers import settings as make_settings

LEASE = timedelta(minutes=10)


def dispatch(
    store: Store, transport: MemoryTransport, clock: FixedClock, **options: int
) -> DispatchReport:
    opts = DispatchOptions(sender=SENDER, **options)  # type: ignore[arg-type]
    dispatcher = Dispatcher(store, transport, clock, opts, random.Random(7), owner="test")
    return asyncio.run(dispatcher.run())


def states(store: Store, sub_id: int) -> list[OutboxState]:
    return [state for _, state, _, _ in store.outbox_messages(sub_id)]


def test_fill_twice_writes_the_same_rows_once(store: Store, tmp_path: Path) -> None:
    subs = add_subscribers(store, 5)
    new = edition(make_settings(tmp_path, "sqlite://"))
    assert queue(store, new, subs) == (1, 5)
    assert queue(store, new, subs) == (0, 0)
    assert store.outbox_counts()[OutboxState.QUEUED] == 5


def test_a_subscriber_never_gets_two_messages_for_one_edition(store: Store, tmp_path: Path) -> None:
    subs = add_subscribers(store, 2)
    new = edition(make_settings(tmp_path, "sqlite://"))
    assert queue(store, new, [subs[0], subs[0], subs[1]]) == (1, 2)
    clock = FixedClock(T0)
    transport = MemoryTransport()
    dispatch(store, transport, clock)
    dispatch(store, transport, clock)
    assert sorted(e.recipient for e in transport.sent) == [
        f"user{subs[0]}@example.com",
        f"user{subs[1]}@example.com",
    ]


def test_sent_messages_carry_the_row_message_id_and_the_send_time(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 3)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    clock = FixedClock(T0 + timedelta(hours=1))
    transport = MemoryTransport()
    report = dispatch(store, transport, clock, batch_size=2)
    assert (report.sent, report.batches) == (3, 2)
    assert max(transport.batches) <= 2
    for sub_id, envelope in zip(
        subs, sorted(transport.sent, key=lambda e: e.outbox_id), strict=True
    ):
        [(_, state, attempts, message_id)] = store.outbox_messages(sub_id)
        assert (state, attempts) == (OutboxState.SENT, 1)
        parsed = message_from_bytes(envelope.data)
        assert parsed["Message-ID"] == message_id == message_id_of(envelope.data)
        assert message_id.endswith("@blog.example.com>")
        assert parsedate_to_datetime(parsed["Date"]) == clock.now()
        assert envelope.sender == SENDER


def test_retry_waits_within_the_jitter_bounds_then_sends(store: Store, tmp_path: Path) -> None:
    [sub] = add_subscribers(store, 1)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), [sub])
    clock = FixedClock(T0)
    transport = MemoryTransport({f"user{sub}@example.com": [Outcome.RETRY, Outcome.RETRY]})
    for attempt in (1, 2):
        report = dispatch(store, transport, clock)
        assert report.retry == 1
        [(_, state, attempts, _)] = store.outbox_messages(sub)
        assert (state, attempts) == (OutboxState.RETRY, attempt)
        [when] = store.outbox_next_attempts([1]).values()
        assert when is not None
        assert timedelta(0) <= when - clock.now() <= timedelta(seconds=backoff_bound(attempt))
        assert dispatch(store, transport, clock).attempted == 0  # not due yet
        clock.set(when)
    assert dispatch(store, transport, clock).sent == 1
    assert states(store, sub) == [OutboxState.SENT]


def test_backoff_bounds_double_from_30_seconds_up_to_an_hour() -> None:
    assert [backoff_bound(n) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]


def test_throttling_counts_toward_max_attempts_with_a_growing_backoff(
    store: Store, tmp_path: Path
) -> None:
    [sub] = add_subscribers(store, 1)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), [sub])
    clock = FixedClock(T0)
    transport = MemoryTransport(default=Outcome.THROTTLED)  # a relay that always says 4xx
    options = DispatchOptions(sender=SENDER, max_attempts=4)
    dispatcher = Dispatcher(store, transport, clock, options, random.Random(1))
    delays = []
    for attempt in range(1, 4):
        asyncio.run(dispatcher.run())
        [(_, state, attempts, _)] = store.outbox_messages(sub)
        assert (state, attempts) == (OutboxState.RETRY, attempt)
        [due] = store.outbox_next_attempts([1]).values()
        assert due is not None
        delays.append((due - clock.now()).total_seconds())
        clock.advance(timedelta(hours=2))
    assert [d <= backoff_bound(n) for n, d in enumerate(delays, 1)] == [True] * 3
    assert transport.limiter.rate is not None  # the transport's limiter slowed down
    asyncio.run(dispatcher.run())
    [(_, state, attempts, _)] = store.outbox_messages(sub)
    assert (state, attempts) == (OutboxState.FAILED, 4)  # bounded: max_attempts
    [failure] = store.outbox_failures()
    assert (failure.code, failure.state) == (421, OutboxState.FAILED)
    assert "slow down" in failure.reply  # `feedpipe outbox` lists it with its reply
    assert dispatcher.report.throttled == 4 and store.subscriber_failures(sub) == 0


def test_a_throttling_reply_slows_sending_down_once(store: Store, tmp_path: Path) -> None:
    [sub] = add_subscribers(store, 1)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), [sub])
    transport = MemoryTransport({f"user{sub}@example.com": [Outcome.THROTTLED]})
    options = DispatchOptions(sender=SENDER, max_attempts=2)
    dispatcher = Dispatcher(store, transport, FixedClock(T0), options, random.Random(1))
    asyncio.run(dispatcher.run())
    assert dispatcher.report.throttled == 1
    assert dispatcher.budget is None  # no limit configured: no shared budget either
    assert transport.limiter.factor == 0.5  # the transport's one limiter halved, once


def test_stop_is_checked_before_each_message_and_latency_hears_each_send(
    sqlite_store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(sqlite_store, 5)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)
    transport = MemoryTransport()
    heard: list[int] = []
    options = DispatchOptions(sender=SENDER, batch_size=2, concurrency=1)
    dispatcher = Dispatcher(
        sqlite_store,
        transport,
        FixedClock(T0),
        options,
        random.Random(1),
        on_latency=lambda seconds, count: heard.append(count),
    )
    report = asyncio.run(dispatcher.run(stop=lambda: len(transport.batches) >= 2))
    # the second batch was claimed, but stop() was true before a connection took anything
    assert (report.batches, report.sent, heard) == (2, 2, [2, 2])
    assert sqlite_store.outbox_counts()[OutboxState.SENDING] == 0
    assert asyncio.run(dispatcher.run()).sent == 5  # the rest goes out on the next run


def test_permanent_failure_fails_the_message_and_counts_a_bounce(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 2)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    transport = MemoryTransport({f"user{subs[0]}@example.com": [Outcome.FAILED]})
    report = dispatch(store, transport, FixedClock(T0))
    assert (report.sent, report.failed) == (1, 1)
    assert states(store, subs[0]) == [OutboxState.FAILED]
    assert store.subscriber_failures(subs[0]) == 1
    assert store.subscriber_failures(subs[1]) == 0
    [failure] = store.outbox_failures()
    assert (failure.code, failure.recipient) == (550, f"user{subs[0]}@example.com")


def test_bounce_limit_bounces_the_subscriber_and_cancels_their_queue(
    store: Store, tmp_path: Path
) -> None:
    [sub] = add_subscribers(store, 1)
    config = make_settings(tmp_path, "sqlite://")
    for post_id in (1, 2, 3):
        queue(store, edition(config, post_id), [sub])
    transport = MemoryTransport({f"user{sub}@example.com": [Outcome.FAILED] * 3})
    report = dispatch(store, transport, FixedClock(T0), batch_size=1, concurrency=1, bounce_limit=2)
    assert (report.failed, report.cancelled, report.bounced_subscribers) == (2, 1, 1)
    assert states(store, sub) == [OutboxState.FAILED, OutboxState.FAILED, OutboxState.CANCELLED]
    found = store.subscriber_by_id(sub)
    assert found is not None and found.status is SubscriberStatus.BOUNCED


def test_a_success_resets_the_bounce_count(store: Store, tmp_path: Path) -> None:
    [sub] = add_subscribers(store, 1)
    config = make_settings(tmp_path, "sqlite://")
    for post_id in (1, 2):
        queue(store, edition(config, post_id), [sub])
    transport = MemoryTransport({f"user{sub}@example.com": [Outcome.FAILED, Outcome.SENT]})
    dispatch(store, transport, FixedClock(T0), batch_size=1, concurrency=1)
    assert store.subscriber_failures(sub) == 0


def test_max_attempts_then_failed(store: Store, tmp_path: Path) -> None:
    [sub] = add_subscribers(store, 1)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), [sub])
    clock = FixedClock(T0)
    transport = MemoryTransport(default=Outcome.RETRY)
    for _ in range(3):
        dispatch(store, transport, clock, max_attempts=3)
        clock.advance(timedelta(hours=2))
    assert dispatch(store, transport, clock, max_attempts=3).attempted == 0
    [(_, state, attempts, _)] = store.outbox_messages(sub)
    assert (state, attempts) == (OutboxState.FAILED, 3)
    assert store.subscriber_failures(sub) == 0  # a temporary failure is not a bounce
    assert len(transport.attempts) == 3


def test_an_expired_lease_is_reclaimed_with_the_same_message_id(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 3)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    claim = store.claim_outbox("crashed", T0, LEASE, 2)  # a worker that then died
    assert len(claim.messages) == 2
    clock = FixedClock(T0)
    transport = MemoryTransport()
    assert dispatch(store, transport, clock).sent == 1  # the other two are still leased
    clock.advance(LEASE + timedelta(seconds=1))
    assert dispatch(store, transport, clock).sent == 2
    resent = {e.outbox_id: message_id_of(e.data) for e in transport.sent[1:]}
    assert resent == {m.outbox_id: m.message_id for m in claim.messages}
    # the crashed claim is no delivery attempt: one attempt each
    assert [store.outbox_messages(m.recipient.subscriber_id)[0][2] for m in claim.messages] == [
        1,
        1,
    ]


def test_a_stopping_process_releases_its_leases_for_others_at_once(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 3)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    mine = store.claim_outbox("host:42:run1", T0, LEASE, 2)
    other = store.claim_outbox("host:420:run1", T0, LEASE, 1)  # same host, another process
    assert store.release_outbox("host:42:", T0) == 2
    again = store.claim_outbox("next", T0, LEASE, 10)  # due now, not after the lease
    assert sorted((m.outbox_id, m.message_id) for m in again.messages) == sorted(
        (m.outbox_id, m.message_id) for m in mine.messages
    )
    assert other.messages[0].outbox_id not in {m.outbox_id for m in again.messages}


def test_a_late_result_of_a_lost_lease_never_overwrites_the_new_owner(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    [sub] = add_subscribers(store, 1)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), [sub])
    [old] = store.claim_outbox("old", T0, LEASE, 10).messages
    [new] = store.claim_outbox("new", T0 + LEASE * 2, LEASE, 10).messages
    assert old.outbox_id == new.outbox_id
    late = Decision(old.outbox_id, sub, OutboxState.RETRY, T0, True, 451, "late")
    store.record_outbox("old", [late], T0 + LEASE * 2, 3, taken=[old.outbox_id])
    assert states(store, sub) == [OutboxState.QUEUED]  # claimed by "new", not yet taken
    store.record_outbox("new", [], T0 + LEASE * 2, 3, taken=[new.outbox_id])
    assert states(store, sub) == [OutboxState.SENDING]
    sent = Decision(new.outbox_id, sub, OutboxState.SENT, None, True, 250, "ok")
    store.record_outbox("new", [sent], T0 + LEASE * 2, 3)
    assert states(store, sub) == [OutboxState.SENT]


def test_unsubscribed_subscribers_queued_rows_are_cancelled_not_sent(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 3)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    store.move_subscriber(subs[1], Action.UNSUBSCRIBE, T0)
    store.move_subscriber(subs[2], Action.BOUNCE, T0)
    transport = MemoryTransport()
    report = dispatch(store, transport, FixedClock(T0))
    assert (report.sent, report.cancelled) == (1, 2)
    assert [e.recipient for e in transport.attempts] == [f"user{subs[0]}@example.com"]
    assert states(store, subs[1]) == states(store, subs[2]) == [OutboxState.CANCELLED]


def test_a_server_that_is_down_leaves_everything_queued(store: Store, tmp_path: Path) -> None:
    subs = add_subscribers(store, 5)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    transport = MemoryTransport()
    transport.down = True
    report = dispatch(store, transport, FixedClock(T0), batch_size=2, concurrency=1)
    assert report.server_down and report.batches == 1
    counts = store.outbox_counts()
    assert (counts[OutboxState.QUEUED], counts[OutboxState.RETRY]) == (3, 2)
    assert all(store.outbox_messages(i)[0][2] == 0 for i in subs)  # attempts not counted


def test_a_removed_subscriber_takes_their_messages_along(store: Store, tmp_path: Path) -> None:
    subs = add_subscribers(store, 2)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    store.remove_subscriber(subs[0])
    assert store.outbox_counts()[OutboxState.QUEUED] == 1


def test_two_concurrent_claimers_never_claim_the_same_row(store: Store, tmp_path: Path) -> None:
    subs = add_subscribers(store, 300)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claimer(owner: str) -> None:
        start.wait()
        while batch := store.claim_outbox(owner, T0, LEASE, 7).messages:
            claimed[owner].extend(m.outbox_id for m in batch)
            time.sleep(0.001)  # let the other claimer in

    threads = [threading.Thread(target=claimer, args=(o,)) for o in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(claimed["a"]) & set(claimed["b"])
    assert len(claimed["a"]) + len(claimed["b"]) == 300
    assert claimed["a"] and claimed["b"]
    assert not store.claim_outbox("c", T0, LEASE, 10).messages  # all 300 are leased


def test_retry_failed_queues_them_again(store: Store, tmp_path: Path) -> None:
    [sub] = add_subscribers(store, 1)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), [sub])
    clock = FixedClock(T0)
    dispatch(store, MemoryTransport({f"user{sub}@example.com": [Outcome.FAILED]}), clock)
    assert store.retry_failed_outbox(clock.now()) == 1
    assert dispatch(store, MemoryTransport(), clock).sent == 1
