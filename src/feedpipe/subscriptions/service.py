"""SubscriptionService: every subscriber status change, by the transition table, and lookups."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import IO

from feedpipe.clock import Clock
from feedpipe.errors import DuplicateSubscriberError, NotFoundError
from feedpipe.model import (
    STOPPED,
    Action,
    Frequency,
    NewSubscriber,
    Preferences,
    Schedule,
    Subscriber,
    SubscriberStatus,
    TermKind,
    transition,
)
from feedpipe.parallel import Tick, checkpoint
from feedpipe.settings import Settings
from feedpipe.store import Store
from feedpipe.subscriptions.fields import (
    MAX_NAME_CHARS,
    CategoryIndex,
    FieldError,
    PreferencesInput,
    RowError,
    SubscribeInput,
    email_field,
    given_name_field,
    new_preferences,
    new_schedule,
    new_subscriber,
    read_csv,
    write_csv,
)
from feedpipe.subscriptions.links import SubscriptionLinks
from feedpipe.subscriptions.mailer import StoreMailer, SubscriberMailer
from feedpipe.subscriptions.suppressions import STOPS_BY, Suppressions, refusal
from feedpipe.subscriptions.tokens import InvalidTokenError, TokenPurpose

# Only to validate a request's schedule fields against (the values are never stored).
_ANY_SCHEDULE = Schedule(Frequency.DAILY, 0, time(8, 0), "UTC")
# After these, nothing queued for the subscriber may go out.
_CANCELS = STOPPED | {SubscriberStatus.PAUSED}
# Who may ask for their links by email (/unsubscribe): those who get, or paused, digests.
LINKABLE = frozenset({SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED})


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What a CSV import did: how many were added, and every row that was not."""

    added: int
    errors: tuple[RowError, ...]


@dataclass
class SubscriptionService:
    """The one owner of a subscriber's life: add, import, double opt-in, every transition of
    the table in feedpipe.model.subscribers, preferences, removal; links via `links`."""

    settings: Settings
    store: Store
    clock: Clock
    links: SubscriptionLinks = field(init=False)
    mailer: SubscriberMailer = field(init=False)
    suppressions: Suppressions = field(init=False)

    def __post_init__(self) -> None:
        self.links = SubscriptionLinks(self.settings, self.store, self.clock)
        self.suppressions = Suppressions(self.store, self.clock)
        self.mailer = StoreMailer(self.store, self.clock)

    def with_mailer(self, mailer: SubscriberMailer) -> SubscriptionService:
        """The same service (and links) sending confirmations and cancelling through `mailer`."""
        other = copy.copy(self)
        other.mailer = mailer
        return other

    # -- reads --------------------------------------------------------------------------------

    def categories(self) -> CategoryIndex:
        return CategoryIndex.of(self.store.terms(TermKind.CATEGORY))

    def subscribers(
        self,
        status: SubscriberStatus | None = None,
        category: str | None = None,
        frequency: Frequency | None = None,
    ) -> list[Subscriber]:
        """Subscribers matching every filter given; `category` is a name, checked to exist."""
        key = self.categories().resolve(category)[0] if category and category.strip() else None
        return self.store.subscribers(status, key, frequency)

    def schedule_counts(self) -> list[tuple[Schedule, datetime, int]]:
        """Active subscribers grouped by (schedule, slot cursor): for counts, not each one."""
        return self.store.schedule_counts(SubscriberStatus.ACTIVE)

    def get(self, email: str) -> Subscriber:
        found = self.store.subscriber_by_email(email)
        if found is None:
            raise NotFoundError(f"{email.strip()} is not subscribed")
        return found

    def by_id(self, subscriber_id: int) -> Subscriber:
        found = self.store.subscriber_by_id(subscriber_id)
        if found is None:
            raise NotFoundError(f"no subscriber {subscriber_id}")
        return found

    def emails(self, ids: Sequence[int]) -> dict[int, str]:
        """Addresses of the subscribers in `ids` that still exist."""
        return {i: c.email for i, c in self.store.subscriber_contacts(ids).items()}

    def by_token(self, purpose: TokenPurpose, token: str) -> Subscriber:
        """The subscriber a valid token names; never one created after the token was made."""
        read = self.links.read(purpose, token)
        sub = self.store.subscriber_by_id(read.subscriber_id)
        if sub is None or read.issued < int(sub.created_at.timestamp()):
            raise InvalidTokenError("this link is not valid")
        return sub

    def export_csv(self, stream: IO[str]) -> int:
        subs = self.store.subscribers()
        write_csv(stream, subs, self.categories())
        return len(subs)

    # -- creation and removal (not transitions: the record starts or ends) --------------------

    def add(self, fields: Mapping[str, str | None], *, opt_in: bool = False) -> Subscriber:
        """Add one subscriber from text fields (see `new_subscriber`; status pending unless
        given), sending nothing; a known address is a DuplicateSubscriberError, a suppressed
        one a SuppressedError (unless `opt_in`: the web's double opt-in may bring it back)."""
        new = new_subscriber(fields, self.settings.digest, self.categories(), self.clock.now())
        if not opt_in:
            self.suppressions.check(new.email)
        return self.store.add_subscriber(new)

    def import_csv(self, stream: IO[str], tick: Tick | None = None) -> ImportReport:
        """Import a CSV: bad, duplicate and suppressed rows are reported by line number (a
        suppressed address is never revived by an import), the rest added,
        one transaction per chunk of rows (an interrupted import keeps the chunks it
        committed; run again, it reports those rows as already subscribed and adds the rest).
        `tick(rows done, rows)` after each chunk, where a held Ctrl-C is taken."""
        errors: list[RowError] = []
        first_line: dict[str, int] = {}
        added = done = 0
        total, chunks = read_csv(stream, self.settings.digest, self.categories(), self.clock.now())
        if tick is not None:
            tick(0, total)
        with closing(chunks):  # stopped early (Ctrl-C, an error): its pool stops now
            for chunk in chunks:
                added += self._import_chunk(chunk, first_line, errors)
                done += len(chunk)
                if tick is not None:
                    tick(done, total)
                checkpoint()
        errors.sort(key=lambda e: e.line)
        return ImportReport(added=added, errors=tuple(errors))

    def _import_chunk(
        self,
        chunk: Sequence[tuple[int, NewSubscriber | RowError]],
        first_line: dict[str, int],
        errors: list[RowError],
    ) -> int:
        """Add a chunk's good rows in one transaction; how many were added."""
        rows: list[NewSubscriber] = []
        lines: list[int] = []
        suppressed = self.suppressions.among(
            [item.email for _, item in chunk if not isinstance(item, RowError)]
        )
        for line, item in chunk:
            if isinstance(item, RowError):
                errors.append(item)
            elif item.email_key in suppressed:
                errors.append(RowError(line, refusal(suppressed[item.email_key])))
            elif item.email_key in first_line:
                repeated = first_line[item.email_key]
                errors.append(RowError(line, f"{item.email} repeats line {repeated}"))
            else:
                first_line[item.email_key] = line
                rows.append(item)
                lines.append(line)
        duplicates = self.store.import_subscribers(rows) if rows else []
        for index in duplicates:
            errors.append(RowError(lines[index], f"{rows[index].email} is already subscribed"))
        return len(rows) - len(duplicates)

    def remove(self, email: str) -> Subscriber:
        """Delete a subscriber and everything stored about them (admin / CLI)."""
        found = self.get(email)
        self.store.remove_subscriber(found.id)
        return found

    # -- double opt-in ------------------------------------------------------------------------

    def check_request(self, wanted: SubscribeInput) -> str:
        """The normalised address of a valid request (every field checked, the same work for
        any address: nothing about it is looked up); FieldError / UnknownCategoriesError."""
        email = email_field(wanted.email)
        if wanted.name is not None and len(wanted.name) > MAX_NAME_CHARS:
            raise FieldError("name", f"is longer than {MAX_NAME_CHARS} characters")
        given_name_field(wanted.given_name)
        self.categories().check(wanted.categories)
        new_schedule(wanted.preferences(), _ANY_SCHEDULE)  # each bad field raises, by name
        return email

    def request(self, wanted: SubscribeInput) -> Subscriber:
        """Double opt-in: a new address becomes pending and gets a confirmation email; a known
        one goes by Action.SUBSCRIBE (only an unsubscribed one changes). Seen from outside, it
        behaves the same for any state of the address."""
        email = email_field(wanted.email)
        names = self.categories().check(wanted.categories)
        fields = {
            "email": email,
            "name": wanted.name,
            "categories": ",".join(names),
            "frequency": wanted.frequency,
            "weekday": wanted.weekday,
            "time": wanted.time,
            "timezone": wanted.timezone,
            "month_day": wanted.month_day,
            "min_posts": wanted.min_posts,
            "max_wait": wanted.max_wait,
            "given_name": wanted.given_name,
            "status": SubscriberStatus.PENDING.value,
        }
        try:
            sub = self.add(fields, opt_in=True)
        except DuplicateSubscriberError:
            sub = self._again(self.get(email), wanted.preferences())
        if sub.status is SubscriberStatus.PENDING:
            self.mailer.queue_confirmation(sub, self.links.confirm(sub.id))
        return sub

    def _again(self, sub: Subscriber, prefs: PreferencesInput) -> Subscriber:
        if transition(sub.status, Action.SUBSCRIBE) is sub.status:
            return sub  # a repeat: nothing changes, not even preferences
        chosen = self._preferences(sub, prefs)  # validated before anything changes
        self._move(sub.id, Action.SUBSCRIBE)
        self.store.set_subscriber_preferences(sub.id, chosen)
        return self.by_id(sub.id)

    # -- transitions and preferences ----------------------------------------------------------

    def apply(self, subscriber_id: int, action: Action) -> Subscriber:
        """Confirm, pause, resume, unsubscribe, bounce, complain or suppress, by the table;
        InvalidTransitionError (and no change) when it forbids it. Pausing and stopping cancel
        what is queued for the subscriber. Confirming a pending subscription (a completed double
        opt-in) takes the address off the suppression list; bouncing, complaining and
        suppressing put it on (`suppressions.add`)."""
        if action in STOPS_BY:
            email = self.by_id(subscriber_id).email
            self.suppressions.add(email, STOPS_BY[action], "service")
            return self.by_id(subscriber_id)
        old, new = self._moved(subscriber_id, action)
        if action is Action.CONFIRM and old is SubscriberStatus.PENDING:
            self.suppressions.lift(self.by_id(subscriber_id).email)
        if new in _CANCELS:
            self.mailer.cancel_queued(subscriber_id)
        return self.by_id(subscriber_id)

    def send_links(self, email: str) -> None:
        """Mail an address its own unsubscribe and preferences links when it gets digests
        (active or paused); otherwise nothing. Seen from outside, the same for any address."""
        found = self.store.subscriber_by_email(email_field(email))
        if found is not None and found.status in LINKABLE:
            self.mailer.queue_links(found, self.links.recipient(found))

    def unsubscribe_address(self, email: str) -> Subscriber | None:
        """A `mailto:` unsubscribe: the sender's address, if it is a subscriber."""
        found = self.store.subscriber_by_email(email)
        return None if found is None else self.apply(found.id, Action.UNSUBSCRIBE)

    def set_preferences(self, subscriber_id: int, prefs: PreferencesInput) -> Subscriber:
        """New categories, schedule and given name from the preferences page (allowed in
        every status; the status stays)."""
        return self._change(self.by_id(subscriber_id), prefs)

    def update(self, email: str, prefs: PreferencesInput) -> Subscriber:
        """The operator (CLI, admin API) changes what `prefs` fills in — schedule fields,
        categories unless None ([] = all), the given name unless None ("" clears it) —
        validated as the preferences page validates them; the status stays."""
        return self._change(self.get(email), prefs)

    def _change(self, sub: Subscriber, prefs: PreferencesInput) -> Subscriber:
        self.store.set_subscriber_preferences(sub.id, self._preferences(sub, prefs))
        return self.by_id(sub.id)

    def _preferences(self, sub: Subscriber, prefs: PreferencesInput) -> Preferences:
        """Every bad field at once (FieldErrors when more than one), in form order."""
        return new_preferences(prefs, sub.preferences, self.categories())

    def _move(self, subscriber_id: int, action: Action) -> SubscriberStatus:
        return self._moved(subscriber_id, action)[1]

    def _moved(
        self, subscriber_id: int, action: Action
    ) -> tuple[SubscriberStatus, SubscriberStatus]:
        moved = self.store.move_subscriber(subscriber_id, action, self.clock.now())
        if moved is None:
            raise NotFoundError(f"no subscriber {subscriber_id}")
        return moved
