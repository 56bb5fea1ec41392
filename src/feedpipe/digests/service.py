"""DigestService: subscribers and digest planning over the store, with the clock injected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import IO

from feedpipe.clock import Clock
from feedpipe.digests.model import Plan
from feedpipe.digests.plan import plan as plan_digests
from feedpipe.errors import NotFoundError
from feedpipe.model import (
    EditionContent,
    Frequency,
    NewSubscriber,
    Recipient,
    Subscriber,
    SubscriberStatus,
    TermKind,
)
from feedpipe.settings import Settings
from feedpipe.store import Store
from feedpipe.subscriptions.fields import (
    CategoryIndex,
    RowError,
    new_subscriber,
    read_csv,
    write_csv,
)
from feedpipe.subscriptions.tokens import (
    TokenMaker,
    TokenPurpose,
    preferences_url,
    token_secret,
    unsubscribe_url,
)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What a CSV import did: how many were added, and every row that was not."""

    added: int
    errors: tuple[RowError, ...]


@dataclass
class DigestService:
    """Subscriber management and the digest plan → recipients → commit cycle."""

    settings: Settings
    store: Store
    clock: Clock
    _secret: str | None = field(default=None, init=False, repr=False)

    def categories(self) -> CategoryIndex:
        return CategoryIndex.of(self.store.terms(TermKind.CATEGORY))

    def subscribe(self, fields: Mapping[str, str | None]) -> Subscriber:
        """Add one subscriber from text fields (see `new_subscriber`); duplicates are an error."""
        new = new_subscriber(fields, self.settings.digest, self.categories(), self.clock.now())
        return self.store.add_subscriber(new)

    def import_csv(self, stream: IO[str]) -> ImportReport:
        """Import a CSV: bad and duplicate rows are reported by line number, the rest added."""
        rows: list[NewSubscriber] = []
        lines: list[int] = []
        errors: list[RowError] = []
        first_line: dict[str, int] = {}
        for line, item in read_csv(
            stream, self.settings.digest, self.categories(), self.clock.now()
        ):
            if isinstance(item, RowError):
                errors.append(item)
            elif item.email_key in first_line:
                errors.append(
                    RowError(line, f"{item.email} repeats line {first_line[item.email_key]}")
                )
            else:
                first_line[item.email_key] = line
                rows.append(item)
                lines.append(line)
        duplicates = self.store.import_subscribers(rows)
        for index in duplicates:
            errors.append(RowError(lines[index], f"{rows[index].email} is already subscribed"))
        errors.sort(key=lambda e: e.line)
        return ImportReport(added=len(rows) - len(duplicates), errors=tuple(errors))

    def subscribers(
        self,
        status: SubscriberStatus | None = None,
        category: str | None = None,
        frequency: Frequency | None = None,
    ) -> list[Subscriber]:
        """Subscribers matching every filter given; `category` is a name, checked to exist."""
        key = self.categories().resolve(category)[0] if category and category.strip() else None
        return self.store.subscribers(status, key, frequency)

    def get(self, email: str) -> Subscriber:
        found = self.store.subscriber_by_email(email)
        if found is None:
            raise NotFoundError(f"{email.strip()} is not subscribed")
        return found

    def remove(self, email: str) -> Subscriber:
        found = self.get(email)
        self.store.remove_subscriber(found.id)
        return found

    def export_csv(self, stream: IO[str]) -> int:
        subs = self.store.subscribers()
        write_csv(stream, subs, self.categories())
        return len(subs)

    def plan(self, now: datetime | None = None) -> Plan:
        """Who is due at `now` (default: the clock) and which edition each gets; sends nothing."""
        now = now or self.clock.now()
        subs = self.store.subscribers(SubscriberStatus.ACTIVE)
        if not subs:
            return Plan(now=now)
        since = min(s.watermark for s in subs)
        posts = self.store.digest_posts(since, now)
        return plan_digests(subs, posts, now, self.store.posts_by_ids)

    def recipients(self, plan: Plan) -> dict[str, tuple[Recipient, ...]]:
        """Per edition key, who gets it with their personal unsubscribe and preference links."""
        contacts = self.store.subscriber_contacts(
            [i for e in plan.editions for i in e.subscriber_ids]
        )
        maker = TokenMaker(self.secret(), self.clock.now())
        base = self.settings.web.base_url
        out: dict[str, tuple[Recipient, ...]] = {}
        for edition in plan.editions:
            out[edition.key] = tuple(
                Recipient(
                    subscriber_id=i,
                    email=contacts[i][0],
                    name=contacts[i][1],
                    unsubscribe_url=unsubscribe_url(base, maker.make(TokenPurpose.UNSUBSCRIBE, i)),
                    preferences_url=preferences_url(base, maker.make(TokenPurpose.PREFERENCES, i)),
                )
                for i in edition.subscriber_ids
                if i in contacts  # removed since planning: skip
            )
        return out

    def preview(
        self, email: str | None = None, categories: str | None = None, now: datetime | None = None
    ) -> tuple[EditionContent | None, Recipient]:
        """The digest a subscriber (or a made-up one with `categories`, new for a week) would
        get if it were due now; None when nothing is new to them. Changes nothing."""
        now = now or self.clock.now()
        sub = self.get(email) if email else self._sample_subscriber(categories or "", now)
        sub = replace(sub, status=SubscriberStatus.ACTIVE, last_digest_at=now - timedelta(days=8))
        posts = self.store.digest_posts(sub.watermark, now)
        plan = plan_digests([sub], posts, now, self.store.posts_by_ids)
        return (plan.editions[0].content if plan.editions else None), self.recipient(sub)

    def _sample_subscriber(self, categories: str, now: datetime) -> Subscriber:
        week_ago = now - timedelta(days=7)
        return Subscriber(
            id=0,
            email="preview@example.com",
            name="Preview Reader",
            status=SubscriberStatus.ACTIVE,
            categories=self.categories().resolve(categories) if categories else (),
            frequency=Frequency.DAILY,
            weekday=0,
            send_time=time(0, 0),
            timezone="UTC",
            created_at=week_ago,
            confirmed_at=week_ago,
            unsubscribed_at=None,
            watermark=week_ago,
            last_digest_at=None,
        )

    def recipient(self, sub: Subscriber) -> Recipient:
        """One subscriber with fresh unsubscribe and preference links."""
        maker = TokenMaker(self.secret(), self.clock.now())
        base = self.settings.web.base_url
        return Recipient(
            subscriber_id=sub.id,
            email=sub.email,
            name=sub.name,
            unsubscribe_url=unsubscribe_url(base, maker.make(TokenPurpose.UNSUBSCRIBE, sub.id)),
            preferences_url=preferences_url(base, maker.make(TokenPurpose.PREFERENCES, sub.id)),
        )

    def secret(self) -> str:
        """The token key: $FEEDPIPE_SECRET_KEY, else one generated once and kept in the store."""
        if self._secret is None:
            self._secret = token_secret(self.settings, self.store)
        return self._secret
