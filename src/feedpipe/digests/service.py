"""DigestService: digest planning and recipients over the store, with the clock injected."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta

from feedpipe.clock import Clock
from feedpipe.digests.model import Plan, Rules
from feedpipe.digests.plan import plan as plan_digests
from feedpipe.digests.plan import preview_edition
from feedpipe.model import (
    EditionContent,
    Frequency,
    Recipient,
    Subscriber,
    SubscriberStatus,
)
from feedpipe.settings import Settings
from feedpipe.store import Store
from feedpipe.subscriptions.service import SubscriptionService


@dataclass
class DigestService:
    """The digest plan → recipients → commit cycle over the store, with the clock injected;
    subscribers (and their links) belong to `subscriptions`."""

    settings: Settings
    store: Store
    clock: Clock
    subscriptions: SubscriptionService = field(init=False)

    def __post_init__(self) -> None:
        self.subscriptions = SubscriptionService(self.settings, self.store, self.clock)

    @property
    def rules(self) -> Rules:
        """The [digest] rules every plan applies."""
        return rules_of(self.settings)

    def plan(self, now: datetime | None = None, render_key: str = "") -> Plan:
        """Who is due at `now` (default: the clock) and which edition each gets; sends nothing.
        `render_key` (EmailRenderer.fingerprint) goes into every edition key."""
        now = now or self.clock.now()
        subs = self.store.subscribers(SubscriberStatus.ACTIVE)
        if not subs:
            return Plan(now=now)
        since = min(s.watermark for s in subs)
        posts = self.store.digest_posts(since, now)
        planned = plan_digests(subs, posts, now, self.store.posts_by_ids, render_key, self.rules)
        first = frozenset(s.id for s in subs if s.watermark <= s.created_at)  # nothing sent yet
        return replace(planned, first=first & planned.watermarks.keys())

    def recipients(self, plan: Plan) -> dict[str, tuple[Recipient, ...]]:
        """Per edition key, who gets it with their personal unsubscribe and preference links."""
        contacts = self.store.subscriber_contacts(
            [i for e in plan.editions for i in e.subscriber_ids]
        )
        people = self.subscriptions.links.recipients(contacts)
        for i in plan.first & people.keys():
            people[i] = replace(people[i], first=True)
        return {
            edition.key: tuple(
                people[i]
                for i in edition.subscriber_ids
                if i in people  # removed since planning: skip
            )
            for edition in plan.editions
        }

    def preview(
        self, email: str | None = None, categories: str | None = None, now: datetime | None = None
    ) -> tuple[EditionContent | None, Recipient]:
        """The digest a subscriber would get if it were due now (None when nothing is new to
        them), or for a made-up reader of `categories`, the newest posts (at most max_posts),
        whatever their age: what the mail looks like. Changes nothing.

        A subscriber's posts are selected as real digests select them (`plan.eligible`):
        published after they subscribed, available (first seen, or published if later) after
        their watermark, and not back catalogue."""
        now = now or self.clock.now()
        subs, rules = self.subscriptions, self.rules
        if email:
            sub = replace(subs.get(email), status=SubscriberStatus.ACTIVE)
        else:
            sub = self._sample_subscriber(categories or "")
            rules = replace(rules, backdated=timedelta.max)
        posts = self.store.digest_posts(sub.watermark, now)
        content = preview_edition(sub, posts, now, self.store.posts_by_ids, rules)
        first = sub.watermark <= sub.created_at  # nothing sent yet
        return content, replace(subs.links.recipient(sub), first=first)

    def _sample_subscriber(self, categories: str) -> Subscriber:
        epoch = datetime(1970, 1, 1, tzinfo=UTC)  # every post is new to them
        return Subscriber(
            id=0,
            email="preview@example.com",
            name="Preview Reader",
            status=SubscriberStatus.ACTIVE,
            categories=self.subscriptions.categories().resolve(categories) if categories else (),
            frequency=Frequency.DAILY,
            weekday=0,
            send_time=time(0, 0),
            timezone="UTC",
            created_at=epoch,
            confirmed_at=epoch,
            unsubscribed_at=None,
            watermark=epoch,
            last_digest_at=None,
        )

    def describe(self, sub: Subscriber) -> str:
        """The subscriber's schedule for people ("instant (within 5 min)", "monthly on ...")."""
        return sub.schedule.describe(self.settings.digest.instant_delay)

    def secret(self) -> str:
        """The token key (read before a fill takes the write lock: it may be stored first)."""
        return self.subscriptions.links.secret()


def rules_of(settings: Settings) -> Rules:
    """The planner's rules from the [digest] settings."""
    digest = settings.digest
    return Rules(
        max_posts=digest.max_posts,
        instant_delay=timedelta(minutes=digest.instant_delay),
        late_after=timedelta(hours=digest.late_after),
        backdated=timedelta(days=digest.backdated_days),
    )
