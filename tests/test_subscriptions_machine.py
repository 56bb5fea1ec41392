"""Stateful property test: random subscriber lives over a real SQLite store follow the table."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from feedpipe.clock import FixedClock
from feedpipe.errors import (
    DuplicateSubscriberError,
    InvalidTransitionError,
    NotFoundError,
    SuppressedError,
)
from feedpipe.model import PENDING, STOPPED, TRANSITIONS, Action, SubscriberStatus, email_key
from feedpipe.model.hygiene import InboundStatus, SuppressionReason
from feedpipe.service import Feedpipe
from feedpipe.settings import settings_from_mapping
from feedpipe.store import SqlStore
from feedpipe.store.outbox_record import bounce
from feedpipe.subscriptions.fields import PreferencesInput, SubscribeInput
from feedpipe.subscriptions.suppressions import ACTIONS, STOPS_BY
from feedpipe.subscriptions.tokens import TokenPurpose
from feedpipe.web.outbox import OutboxMailer
from tests.inbound_samples import arf, dsn

T0 = datetime(2026, 3, 1, tzinfo=UTC)
EMAILS = st.sampled_from([f"reader{i}@example.com" for i in range(2)])
STOPS = st.sampled_from([Action.UNSUBSCRIBE, Action.BOUNCE, Action.COMPLAIN, Action.SUPPRESS])
REASONS = st.sampled_from(list(SuppressionReason))
NO_MAIL = STOPPED | {SubscriberStatus.PAUSED}


@dataclass
class Known:
    """What the model says about one address."""

    id: int
    status: SubscriberStatus


def make_service(root: Path) -> tuple[Feedpipe, FixedClock]:
    (root / "posts").mkdir()
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(root / "posts")},
        "store": {"url": f"sqlite:///{root / 'fp.db'}"},
        "digest": {"timezone": "UTC", "send_time": "08:00"},
        "web": {"base_url": "https://news.example.com"},
    }
    clock = FixedClock(T0)
    return Feedpipe.from_settings(settings_from_mapping(data, root, "test", {}), clock), clock


class SubscriptionMachine(RuleBasedStateMachine):
    """Drives SubscriptionService (and the store's bounce counting) against a model dict."""

    def __init__(self, fp: Feedpipe, clock: FixedClock, posts: Path) -> None:
        super().__init__()
        self.fp, self.clock, self.posts = fp, clock, posts
        self.subs = fp.subscriptions.with_mailer(OutboxMailer(fp))  # the real outbox
        self.model: dict[str, Known] = {}
        self.suppressed: set[str] = set()  # address keys on the suppression list
        self.soft: dict[str, int] = {}  # soft bounces counted per address (per subscriber id)
        self.post_count = 0

    @initialize()
    def empty_store(self) -> None:
        for sub in self.fp.store.subscribers():
            self.fp.store.remove_subscriber(sub.id)
        for entry in self.fp.store.suppressions():
            self.fp.store.unsuppress(entry.email)

    def _tick(self) -> None:
        self.clock.set(self.clock.now() + timedelta(minutes=7))

    def _expect(self, email: str, action: Action, do: Callable[[], object]) -> None:
        """Run `do`; it must succeed exactly when the table allows `action`, else change nothing."""
        known = self.model[email]
        allowed = TRANSITIONS.get((known.status, action))
        if allowed is None:
            with pytest.raises(InvalidTransitionError):
                do()
        else:
            do()
            known.status = allowed

    # -- rules --------------------------------------------------------------------------------

    @rule(email=EMAILS)
    def request(self, email: str) -> None:
        """The web's double opt-in, new address or again."""
        self._tick()
        sub = self.subs.request(SubscribeInput(email=email))
        if email in self.model:
            known = self.model[email]
            known.status = TRANSITIONS[known.status, Action.SUBSCRIBE]  # never invalid
        else:
            self.model[email] = Known(sub.id, SubscriberStatus.PENDING)

    @rule(email=EMAILS)
    def add_confirmed(self, email: str) -> None:
        """CLI `subscribers add --confirmed` / an import row: a duplicate changes nothing."""
        self._tick()
        fields = {"email": email, "status": "active"}
        if email_key(email) in self.suppressed:  # never revived by an import or an add
            with pytest.raises(SuppressedError):
                self.subs.add(fields)
        elif email in self.model:
            with pytest.raises(DuplicateSubscriberError):
                self.subs.add(fields)
        else:
            self.model[email] = Known(self.subs.add(fields).id, SubscriberStatus.ACTIVE)

    def _apply(self, email: str, action: Action) -> None:
        if email in self.model:
            self._tick()
            sub_id = self.model[email].id
            self._expect(email, action, lambda: self.subs.apply(sub_id, action))

    @rule(email=EMAILS)
    def confirm(self, email: str) -> None:
        """Following the confirmation link: a completed double opt-in lifts a suppression."""
        was = self.model[email].status if email in self.model else None
        self._apply(email, Action.CONFIRM)
        if was is SubscriberStatus.PENDING:
            self.suppressed.discard(email_key(email))

    @rule(email=EMAILS)
    def import_row(self, email: str) -> None:
        """A CSV import of an active row: suppressed and known addresses are refused rows."""
        self._tick()
        report = self.subs.import_csv(io.StringIO(f"email,status\n{email},active\n"))
        if email_key(email) in self.suppressed or email in self.model:
            assert (report.added, len(report.errors)) == (0, 1)
        else:
            assert report.added == 1
            self.model[email] = Known(self.subs.get(email).id, SubscriberStatus.ACTIVE)

    @rule(email=EMAILS, reason=REASONS)
    def suppress_address(self, email: str, reason: SuppressionReason) -> None:
        """`feedpipe suppressions add` / an inbound bounce or complaint: the subscriber stops."""
        self._tick()
        self.subs.suppressions.add(email, reason)
        self.suppressed.add(email_key(email))
        if email in self.model:
            known = self.model[email]
            known.status = TRANSITIONS[known.status, ACTIONS[reason]]

    @rule(email=EMAILS)
    def unsuppress_address(self, email: str) -> None:
        """`feedpipe suppressions remove`: the entry goes; the subscriber's status stays."""
        if email_key(email) in self.suppressed:
            self.subs.suppressions.remove(email)
            self.suppressed.discard(email_key(email))
        else:
            with pytest.raises(NotFoundError):
                self.subs.suppressions.remove(email)

    @rule(email=EMAILS)
    def pause(self, email: str) -> None:
        self._apply(email, Action.PAUSE)

    @rule(email=EMAILS)
    def resume(self, email: str) -> None:
        self._apply(email, Action.RESUME)

    @rule(email=EMAILS, action=STOPS)
    def stop(self, email: str, action: Action) -> None:
        """Unsubscribe (preferences page), an immediate bounce, a complaint, a suppression."""
        self._apply(email, action)
        if email in self.model and action in STOPS_BY:
            self.suppressed.add(email_key(email))

    @rule(email=EMAILS)
    def one_click_unsubscribe(self, email: str) -> None:
        if email in self.model:
            url = self.subs.links.unsubscribe(self.model[email].id)
            self._tick()
            sub = self.subs.by_token(TokenPurpose.UNSUBSCRIBE, url.rsplit("/", 1)[1])
            action = Action.UNSUBSCRIBE
            self._expect(email, action, lambda: self.subs.apply(sub.id, action))

    @rule(email=EMAILS)
    def mailto_unsubscribe(self, email: str) -> None:
        self._tick()
        if email in self.model:
            self._expect(
                email, Action.UNSUBSCRIBE, lambda: self.subs.unsubscribe_address(email.upper())
            )
        else:
            assert self.subs.unsubscribe_address(email) is None

    @rule(email=EMAILS)
    def remove(self, email: str) -> None:
        """Admin / CLI remove: the record is gone; the address may come back as new."""
        if email in self.model:
            assert self.subs.remove(email).id == self.model.pop(email).id
            self.soft.pop(email, None)

    @rule(email=EMAILS, verdict=st.sampled_from(["hard", "soft", "complaint"]))
    def inbound_report(self, email: str, verdict: str) -> None:
        """A DSN (hard or soft) or an ARF complaint about a message queued for the address,
        through `feedpipe inbound`'s processor: tied by the returned Message-ID."""
        self._tick()
        known = self.model.get(email)
        rows = self.fp.store.outbox_messages(known.id) if known else []
        message_id = rows[-1][3] if rows else "<never@elsewhere>"
        original = f"To: {email}\r\nMessage-ID: {message_id}\r\n"
        ident = f"<in-{uuid.uuid4().hex}@mx>"  # the store outlives one machine run
        if verdict == "complaint":
            raw = arf(original, email, ident)
        else:
            status, diag = ("5.1.1", "550 5.1.1 user unknown") if verdict == "hard" else (
                "4.2.2", "452 4.2.2 mailbox full")  # fmt: skip
            raw = dsn("digest@blog.example.com", [(email, "failed", status, diag)], original, ident)
        result = self.fp.inbound.process(raw)
        if known is None or not rows:  # about a message we never sent: kept, nothing changes
            assert result.status is InboundStatus.UNPROCESSED, result
            return
        assert result.status is InboundStatus.PROCESSED, result
        key = email_key(email)
        if verdict == "soft":
            self.soft[email] = self.soft.get(email, 0) + 1
            if self.soft[email] < 3 or key in self.suppressed:
                return
            action = Action.BOUNCE
        else:
            action = Action.BOUNCE if verdict == "hard" else Action.COMPLAIN
        self.suppressed.add(key)
        known.status = TRANSITIONS[known.status, action]

    @rule(email=EMAILS, frequency=st.sampled_from(["daily", "weekly"]))
    def preferences(self, email: str, frequency: str) -> None:
        if email in self.model:
            sub = self.subs.set_preferences(
                self.model[email].id, PreferencesInput(frequency=frequency)
            )
            assert sub.frequency.value == frequency

    @rule(email=EMAILS)
    def counted_bounce(self, email: str) -> None:
        """The outbox's bounce counting (inside its result transaction) uses the same table."""
        if email in self.model:
            known = self.model[email]
            store = self.fp.store
            assert isinstance(store, SqlStore)  # white-box: the outbox's own transaction
            with store.engine.begin() as conn:
                bounce(conn, [known.id], self.clock.now(), 1)
            known.status = TRANSITIONS[known.status, Action.BOUNCE]
            self.suppressed.add(email_key(email))

    @rule()
    def publish_and_fill(self) -> None:
        """A new post, then queue every digest that is due a day later (the worker's job)."""
        self._tick()
        self.post_count += 1
        (self.posts / f"p{self.post_count}.md").write_text(
            f'---\ntitle: "p{self.post_count}"\ndate: {self.clock.now().isoformat()}\n---\nBody.\n',
            encoding="utf-8",
        )
        self.fp.sync()
        self.clock.set(self.clock.now() + timedelta(days=1))
        self.fp.outbox.fill()

    # -- invariants ---------------------------------------------------------------------------

    @invariant()
    def stored_status_is_the_model(self) -> None:
        stored = {s.email: Known(s.id, s.status) for s in self.fp.store.subscribers()}
        assert stored == self.model

    @invariant()
    def stored_suppressions_are_the_model(self) -> None:
        assert {email_key(e.email) for e in self.fp.store.suppressions()} == self.suppressed

    @invariant()
    def suppressed_addresses_are_never_active(self) -> None:
        for email, known in self.model.items():
            if email_key(email) in self.suppressed:
                assert known.status is not SubscriberStatus.ACTIVE, (email, known)

    @invariant()
    def only_active_subscribers_are_planned(self) -> None:
        plan = self.fp.digests.plan(self.clock.now() + timedelta(days=8))
        active = {k.id for k in self.model.values() if k.status is SubscriberStatus.ACTIVE}
        assert set(plan.advances) == active  # sent, empty, held or late
        planned = {r.subscriber_id for rs in self.fp.digests.recipients(plan).values() for r in rs}
        assert planned <= active

    @invariant()
    def stopped_or_paused_subscribers_have_nothing_queued(self) -> None:
        for known in self.model.values():
            if known.status in NO_MAIL:
                states = [m[1] for m in self.fp.store.outbox_messages(known.id)]
                assert not [s for s in states if s in PENDING], (known, states)


def test_subscriber_lives_follow_the_transition_table(tmp_path: Path) -> None:
    fp, clock = make_service(tmp_path)
    with fp:
        run_state_machine_as_test(
            lambda: SubscriptionMachine(fp, clock, tmp_path / "posts"),  # type: ignore[arg-type]
            settings=settings(
                max_examples=50,
                stateful_step_count=20,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )


@pytest.mark.parametrize("status", list(SubscriberStatus))
def test_every_action_is_in_the_table_or_refused(status: SubscriberStatus) -> None:
    from feedpipe.model import transition

    for action in Action:
        if (status, action) in TRANSITIONS:
            assert transition(status, action) is TRANSITIONS[status, action]
        else:
            with pytest.raises(InvalidTransitionError):
                transition(status, action)
