"""DigestService: digest planning and recipients over the store, with the clock injected."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta

from feedpipe.clock import Clock
from feedpipe.digests.model import Plan, Rules
from feedpipe.digests.plan import Planner, preview_edition
from feedpipe.model import (
    Contact,
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
        `render_key` (EmailRenderer.fingerprint) goes into every edition key. (All active
        subscribers at once: a fill plans `run` page by page instead.)"""
        now = now or self.clock.now()
        subs = self.store.subscribers(SubscriberStatus.ACTIVE)
        if not subs:
            return Plan(now=now)
        return self.run(now, render_key).page(subs)

    def run(self, now: datetime, render_key: str | Callable[[], str] = "") -> RunPlan:
        """One plan at `now` to be made page by page (`RunPlan.page`)."""
        return RunPlan(self.store, now, render_key, self.rules)

    def recipients(self, plan: Plan) -> dict[str, tuple[Recipient, ...]]:
        """Per edition key, who gets it with their personal unsubscribe and preference links."""
        contacts = self.store.subscriber_contacts(
            [i for e in plan.editions for i in e.subscriber_ids]
        )
        return self._recipients(plan, contacts)

    def page_recipients(
        self, plan: Plan, subs: Sequence[Subscriber]
    ) -> dict[str, tuple[Recipient, ...]]:
        """`recipients` of a page's plan, the contacts taken from the page's subscribers (those
        of the plan missing from `subs` are left out)."""
        by_id = {s.id: s for s in subs}
        contacts = {
            i: Contact(by_id[i].email, by_id[i].name, by_id[i].given_name)
            for e in plan.editions
            for i in e.subscriber_ids
            if i in by_id
        }
        return self._recipients(plan, contacts)

    def _recipients(
        self, plan: Plan, contacts: Mapping[int, Contact]
    ) -> dict[str, tuple[Recipient, ...]]:
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


class RunPlan:
    """One plan at `now` over pages of active subscribers read from the store: the posts are
    read once (from the oldest active watermark), decisions and editions shared by pages."""

    def __init__(
        self, store: Store, now: datetime, render_key: str | Callable[[], str], rules: Rules
    ) -> None:
        self.store, self.now, self.render_key, self.rules = store, now, render_key, rules
        self.floor: datetime | None = None  # posts that became available after this are read
        self._planner: Planner | None = None

    def page(self, subs: Sequence[Subscriber]) -> Plan:
        """The plan of these subscribers; `first` marks those who were never sent a digest."""
        planner = self._planner_for(min(s.watermark for s in subs))
        planned = planner.plan(subs)
        first = frozenset(s.id for s in subs if s.watermark <= s.created_at)  # nothing sent yet
        return replace(planned, first=first & planned.watermarks.keys())

    def _planner_for(self, low: datetime) -> Planner:
        """The planner, (re)built when a page reaches below the posts read so far (a watermark
        moved back by an expired digest while the pages were read)."""
        if self._planner is not None and self.floor is not None and low >= self.floor:
            return self._planner
        stored = self.store.watermark_floor(SubscriberStatus.ACTIVE)
        self.floor = low if stored is None else min(low, stored)
        posts = self.store.digest_posts(self.floor, self.now)
        self._planner = Planner(
            posts, self.now, self.store.posts_by_ids, self.render_key, self.rules
        )
        return self._planner


def rules_of(settings: Settings) -> Rules:
    """The planner's rules from the [digest] settings."""
    digest = settings.digest
    return Rules(
        max_posts=digest.max_posts,
        instant_delay=timedelta(minutes=digest.instant_delay),
        late_after=timedelta(hours=digest.late_after),
        backdated=timedelta(days=digest.backdated_days),
    )
