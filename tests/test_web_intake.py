"""The durable intake (web/intake.py): stored before the reply, taken over once after a crash,
replayed without mailing twice, bounded (503 when full)."""

from __future__ import annotations

import itertools
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from feedpipe.clock import FixedClock
from feedpipe.errors import StoreError
from feedpipe.model import Recipient, Subscriber
from feedpipe.model.intake import IntakeKind, IntakeRequest
from feedpipe.service import Feedpipe
from feedpipe.store import SqlStore
from feedpipe.subscriptions.fields import SubscribeInput
from feedpipe.subscriptions.mailer import SubscriberMailer
from feedpipe.web import WebConfig, create_app
from feedpipe.web.app import FeedpipeWeb
from feedpipe.web.guard import Guard, subscribe_input, subscribe_payload
from feedpipe.web.intake import MAX_TRIES, IntakeConfig, SubscribeIntake, is_gone, owner_name
from feedpipe.web.outbox import OutboxMailer
from tests.test_web_abuse import OPEN
from tests.test_web_helpers import BASE_URL, TestClient, Web, make_web
from tests.web_timing import seed

HOST = socket.gethostname()
HELD = IntakeConfig(delay=3600.0)  # the thread waits an hour before any work


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in feedpipe catches it)."""


def outbox_app(w: Web, config: IntakeConfig = HELD) -> FeedpipeWeb:
    """The app as `feedpipe serve` builds it: a fresh process's memory (throttle, limits)."""
    web = replace(
        w.fp.settings.web,
        **{"confirmations_per_hour": 10**6, "confirmations_per_domain_per_hour": 10**6},
    )
    service = Feedpipe(replace(w.fp.settings, **{"web": web}), w.fp.store, w.clock)
    return create_app(service, OutboxMailer(service), WebConfig(limits=OPEN, intake=config))


def guard_of(app: FeedpipeWeb) -> Guard:
    guard: Guard = app.pages.state.guard
    return guard


def outbox_messages(store: object) -> Counter[tuple[str, str]]:
    """(recipient, kind) of every outbox row."""
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("select recipient, kind from outbox")).all()
    return Counter((str(r[0]), str(r[1])) for r in rows)


@pytest.fixture
def w(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> Iterator[Web]:
    web = make_web(tmp_path, corpus_dir, clock, OPEN)
    yield web
    web.fp.close()


# -- the request path ---------------------------------------------------------------------------


def test_a_request_is_stored_before_its_reply_and_done_after_it(w: Web) -> None:
    app = outbox_app(w)
    client = TestClient(app, base_url=BASE_URL)
    assert client.post("/api/subscribe", json={"email": "ann@example.com"}).status_code == 202
    assert client.post("/unsubscribe", data={"email": "bob@example.com"}).status_code == 200
    assert w.fp.store.intake_count() == 2  # stored; the thread waits (HELD)
    assert w.fp.store.subscriber_by_email("ann@example.com") is None
    guard_of(app).intake.close()  # shutdown: what the process holds is done first
    assert w.fp.store.intake_count() == 0
    assert outbox_messages(w.fp.store) == {("ann@example.com", "confirm"): 1}


def test_a_full_intake_answers_503_with_retry_after(w: Web) -> None:
    app = outbox_app(w, IntakeConfig(cap=2, delay=3600.0))
    client = TestClient(app, base_url=BASE_URL)
    codes = [
        client.post("/api/subscribe", json={"email": f"p{i}@example.com"}).status_code
        for i in range(2)
    ]
    assert codes == [202, 202]
    refused = client.post("/api/subscribe", json={"email": "late@example.com"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "60"
    assert refused.headers["content-type"].startswith("application/json")
    assert "try again" in refused.json()["error"]
    form = client.post("/subscribe", data={"email": "late@example.com"})
    assert form.status_code == 503 and form.headers["retry-after"] == "60"
    assert "Not available right now" in form.text
    links = client.post("/unsubscribe", data={"email": "late@example.com"})
    assert links.status_code == 503
    assert w.fp.store.intake_count() == 2
    guard_of(app).intake.close()
    assert w.fp.store.intake_count() == 0  # room again
    assert client.post("/api/subscribe", json={"email": "late@example.com"}).status_code == 202


def test_the_payload_round_trips() -> None:
    wanted = SubscribeInput("a@example.com", "Ann", ("Rust", "Go"), "weekly", "mon", "07:30")
    assert subscribe_input(subscribe_payload(wanted)) == wanted


# -- leases and take-over -----------------------------------------------------------------------


def test_who_is_gone() -> None:
    me = owner_name(HOST, 500, "aaaa")
    dead = {600}
    alive: Callable[[int], bool] = lambda pid: pid not in dead  # noqa: E731
    assert not is_gone(me, me, HOST, 500, alive)
    assert is_gone(owner_name(HOST, 600, "bbbb"), me, HOST, 500, alive)  # its pid runs nothing
    assert not is_gone(owner_name(HOST, 700, "cccc"), me, HOST, 500, alive)  # still running
    assert is_gone(owner_name(HOST, 500, "dddd"), me, HOST, 500, alive)  # our pid: restarted
    assert not is_gone(owner_name("elsewhere", 600, "eeee"), me, HOST, 500, alive)
    assert not is_gone("garbage", me, HOST, 500, alive)


def _stored(store: SqlStore, owner: str, clock: FixedClock, n: int = 1) -> None:
    now = clock.now()
    for i in range(n):
        payload = json.dumps({"email": f"r{i}@example.com"})
        assert store.add_intake(
            IntakeKind.LINKS, payload, owner, now, now + timedelta(seconds=60), 100
        )


def _intake(
    store: SqlStore, clock: FixedClock, pid: int, done: list[IntakeRequest]
) -> SubscribeIntake:
    return SubscribeIntake(
        store, clock, done.append, owner=owner_name(HOST, pid, "t"), alive=lambda p: p == pid
    )


def test_a_live_owners_requests_are_not_taken_until_its_lease_ends(
    store: SqlStore, clock: FixedClock
) -> None:
    _stored(store, owner_name("elsewhere", 1, "x"), clock, 3)
    done_a: list[IntakeRequest] = []
    done_b: list[IntakeRequest] = []
    a, b = _intake(store, clock, 11, done_a), _intake(store, clock, 12, done_b)
    a.alive = b.alive = lambda pid: pid in (11, 12)
    assert a.sweep() == 0 and b.sweep() == 0  # another host, lease running: not ours
    clock.advance(timedelta(seconds=61))
    assert a.sweep() == 3
    assert b.sweep() == 0  # taken by one process only
    a.drain()
    assert [r.attempts for r in done_a] == [1, 1, 1] and done_b == []
    assert store.intake_count() == 0


def test_a_dead_local_owners_requests_are_taken_at_once_and_once(
    store: SqlStore, clock: FixedClock
) -> None:
    _stored(store, owner_name(HOST, 10, "dead"), clock, 2)  # pid 10 runs nothing here
    _stored(store, owner_name(HOST, 12, "live"), clock, 1)
    done_a: list[IntakeRequest] = []
    done_b: list[IntakeRequest] = []
    a, b = _intake(store, clock, 11, done_a), _intake(store, clock, 12, done_b)
    a.alive = b.alive = lambda pid: pid in (11, 12)
    b.owner = owner_name(HOST, 12, "live")
    assert a.sweep() == 2  # the dead one's: at once, though its lease still runs
    assert b.sweep() == 0  # b keeps its own; the dead one's are a's now
    a.drain()
    b.drain()
    assert len(done_a) == 2 and len(done_b) == 1
    assert [r.replayed for r in done_a] == [True, True] and not done_b[0].replayed
    assert store.intake_count() == 0


def test_a_request_taken_over_from_a_slow_owner_is_deleted_once(
    store: SqlStore, clock: FixedClock
) -> None:
    done: list[IntakeRequest] = []
    slow = _intake(store, clock, 21, done)
    _stored(store, slow.owner, clock)
    clock.advance(timedelta(seconds=61))  # its lease ran out (stuck, not renewed)
    other = _intake(store, clock, 22, done)
    other.alive = lambda pid: True
    assert other.sweep() == 1
    slow.drain()  # holds nothing now: does nothing
    other.drain()
    assert len(done) == 1 and store.intake_count() == 0


# -- replay after a crash at any point: the same outcome as no crash -----------------------------

POINTS = ("before", "mid", "after-mail", "after-work")


class CrashingMailer:
    """Dies just before (`mid`) or just after (`after-mail`) queuing an email."""

    def __init__(self, inner: SubscriberMailer, point: str) -> None:
        self.inner, self.point = inner, point

    def _around(self, queue: Callable[[], None]) -> None:
        if self.point == "mid":
            raise Crash
        queue()
        raise Crash

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        self._around(lambda: self.inner.queue_confirmation(subscriber, confirm_url))

    def cancel_queued(self, subscriber_id: int) -> int:
        return self.inner.cancel_queued(subscriber_id)

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        self._around(lambda: self.inner.queue_links(subscriber, links))


def _dying(guard: Guard, at: int | None, point: str) -> Callable[[IntakeRequest], None]:
    """The guard's work, dying at the `at`-th request this process handles."""
    count = itertools.count()

    def handle(request: IntakeRequest) -> None:
        if next(count) != at:
            guard.work(request)
            return
        if point == "before":
            raise Crash
        if point == "after-work":
            guard.work(request)
            raise Crash
        original = guard.subscriptions
        guard.subscriptions = original.with_mailer(CrashingMailer(original.mailer, point))
        try:
            guard.work(request)
        finally:
            guard.subscriptions = original

    return handle


def _run(
    w: Web, prefix: str, requests: list[tuple[str, int, str]], lives: list[tuple[int, str]]
) -> tuple[Counter[tuple[str, str]], dict[str, str]]:
    """Seed addresses, store the requests as the process that accepted them did, and let it
    and then successive processes (each dying as `lives` says, the last one not) do them; what
    was queued, by (address without prefix, kind), and each address's final status."""
    pools = seed(w.fp.store, prefix, 2)
    now, until = w.clock.now(), w.clock.now() + timedelta(seconds=60)
    for state, index, kind in requests:
        email = pools[state][index]
        payload = (
            subscribe_payload(SubscribeInput(email))
            if kind == "subscribe"
            else json.dumps({"email": email})
        )
        owner = owner_name(HOST, 100, prefix)
        assert w.fp.store.add_intake(IntakeKind(kind), payload, owner, now, until, 10**6)
    before = outbox_messages(w.fp.store)
    for life, (at, point) in enumerate([*lives, (-1, "")]):
        pid = 100 + life
        w.clock.advance(timedelta(seconds=1))  # a restart takes time: new edition keys
        intake = SubscribeIntake(
            w.fp.store,
            w.clock,
            _dying(guard_of(outbox_app(w)), at, point),  # a fresh process: nothing in memory
            owner=owner_name(HOST, pid, prefix),
            alive=lambda p, pid=pid: p == pid,  # type: ignore[misc]
        )
        try:
            intake.sweep()
            intake.drain()
        except Crash:
            continue
    assert w.fp.store.intake_count() == 0
    queued = outbox_messages(w.fp.store) - before
    found = Counter({(to.removeprefix(prefix), kind): n for (to, kind), n in queued.items()})
    statuses = {}
    for addresses in pools.values():
        for address in addresses:
            sub = w.fp.store.subscriber_by_email(address)
            statuses[address.removeprefix(prefix)] = "-" if sub is None else sub.status.value
    return found, statuses


REQUESTS = st.lists(
    st.tuples(
        st.sampled_from(["new", "pending", "unsubscribed", "active", "paused"]),
        st.integers(0, 1),
        st.sampled_from(["subscribe", "links"]),
    ),
    min_size=1,
    max_size=6,
)
LIVES = st.lists(st.tuples(st.integers(0, 5), st.sampled_from(POINTS)), max_size=3)
EXAMPLES = itertools.count()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(requests=REQUESTS, lives=LIVES)
def test_replaying_requests_after_crashes_is_idempotent(
    w: Web, requests: list[tuple[str, int, str]], lives: list[tuple[int, str]]
) -> None:
    """Processes die at any point of any request (before its work, after the subscriber was
    written, after its email was queued, after all of it but the delete); the next takes over.
    What was queued and every address's status are what one uncrashed process gives."""
    n = next(EXAMPLES)
    expected = _run(w, f"ref{n}", requests, [])
    assert _run(w, f"crash{n}", requests, lives) == expected


def test_a_store_error_keeps_the_request_for_a_replay_and_a_poisoned_one_is_dropped(
    sqlite_store: SqlStore, clock: FixedClock
) -> None:
    seen: list[IntakeRequest] = []

    def handle(request: IntakeRequest) -> None:
        seen.append(request)
        if json.loads(request.payload)["email"] == "r0@example.com":
            raise StoreError("the store is locked by another process (30 s)")

    intake = SubscribeIntake(sqlite_store, clock, handle, owner=owner_name(HOST, 31, "t"))
    _stored(sqlite_store, intake.owner, clock, 2)
    for _ in range(MAX_TRIES - 1):
        with pytest.raises(StoreError):
            intake.drain()  # stops at the first: the store is failing
    assert sqlite_store.intake_count() == 2
    assert intake.drain() == 2  # the fifth error drops it; the next one is done
    assert sqlite_store.intake_count() == 0
    first = [r.attempts for r in seen if r.id == seen[0].id]
    assert first == list(range(MAX_TRIES))  # each retry a replay
    assert [r.attempts for r in seen if r.id != seen[0].id] == [0]
