"""Frozen digest domain types: subscribers, their status transitions, the planner's post view."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from types import MappingProxyType

from feedpipe.errors import InvalidTransitionError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands; only ACTIVE subscribers get digests."""

    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"  # confirmed, asked for no digests until they resume
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Action(enum.StrEnum):
    """What can happen to a stored subscriber's status (creation and removal are not actions)."""

    SUBSCRIBE = "subscribe"  # the address asks (again) through the web: double opt-in
    CONFIRM = "confirm"  # the confirmation link was followed
    PAUSE = "pause"
    RESUME = "resume"
    UNSUBSCRIBE = "unsubscribe"  # one-click link, mailto:, the preferences page
    BOUNCE = "bounce"  # mail to the address failed permanently (often enough)
    COMPLAIN = "complain"  # the address reported a message as spam
    SUPPRESS = "suppress"  # an operator stops all mail to the address, like a hard bounce


_S, _A = SubscriberStatus, Action
_STOPPED_BY = {_A.BOUNCE: _S.BOUNCED, _A.SUPPRESS: _S.BOUNCED, _A.COMPLAIN: _S.COMPLAINED}
# (from, action) -> to. A pair that is missing is an invalid transition; to == from is an
# accepted repeat that changes nothing (a second click, a second bounce).
TRANSITIONS: Mapping[tuple[SubscriberStatus, Action], SubscriberStatus] = MappingProxyType(
    {
        (_S.PENDING, _A.SUBSCRIBE): _S.PENDING,
        (_S.PENDING, _A.CONFIRM): _S.ACTIVE,
        (_S.PENDING, _A.UNSUBSCRIBE): _S.UNSUBSCRIBED,
        (_S.ACTIVE, _A.SUBSCRIBE): _S.ACTIVE,
        (_S.ACTIVE, _A.CONFIRM): _S.ACTIVE,
        (_S.ACTIVE, _A.PAUSE): _S.PAUSED,
        (_S.ACTIVE, _A.RESUME): _S.ACTIVE,
        (_S.ACTIVE, _A.UNSUBSCRIBE): _S.UNSUBSCRIBED,
        (_S.PAUSED, _A.SUBSCRIBE): _S.PAUSED,
        (_S.PAUSED, _A.PAUSE): _S.PAUSED,
        (_S.PAUSED, _A.RESUME): _S.ACTIVE,
        (_S.PAUSED, _A.UNSUBSCRIBE): _S.UNSUBSCRIBED,
        (_S.UNSUBSCRIBED, _A.SUBSCRIBE): _S.PENDING,
        (_S.UNSUBSCRIBED, _A.UNSUBSCRIBE): _S.UNSUBSCRIBED,
        # a new double opt-in is the one way back from a bounce or a complaint
        (_S.BOUNCED, _A.SUBSCRIBE): _S.PENDING,
        (_S.BOUNCED, _A.UNSUBSCRIBE): _S.BOUNCED,
        (_S.COMPLAINED, _A.SUBSCRIBE): _S.PENDING,
        (_S.COMPLAINED, _A.UNSUBSCRIBE): _S.COMPLAINED,
        # bounce, suppress and complain stop mail from every state; a complaint stays a complaint
        **{
            (status, action): _S.COMPLAINED if status is _S.COMPLAINED else to
            for action, to in _STOPPED_BY.items()
            for status in SubscriberStatus
        },
    }
)
# Statuses that never get mail again unless the subscriber acts (only UNSUBSCRIBED can).
STOPPED = frozenset({_S.UNSUBSCRIBED, _S.BOUNCED, _S.COMPLAINED})


def transition(status: SubscriberStatus, action: Action) -> SubscriberStatus:
    """The status `action` leads to from `status`; InvalidTransitionError if it may not."""
    try:
        return TRANSITIONS[status, action]
    except KeyError:
        raise InvalidTransitionError(f"a {status} subscription cannot {action}") from None


def moves(action: Action) -> dict[SubscriberStatus, tuple[SubscriberStatus, ...]]:
    """For set-based updates: each target status of `action` and the statuses that move to it."""
    out: dict[SubscriberStatus, list[SubscriberStatus]] = {}
    for (status, act), to in TRANSITIONS.items():
        if act is action and to is not status:
            out.setdefault(to, []).append(status)
    return {to: tuple(froms) for to, froms in out.items()}


class Frequency(enum.StrEnum):
    """How often a subscriber gets a digest."""

    INSTANT = "instant"  # each post, [digest] instant_delay minutes after it is published
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


LAST_DAY = 0  # month_day value: the last day of the month
DEFAULT_MAX_WAIT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a subscriber's digest goes out, in their own time zone."""

    frequency: Frequency
    weekday: int  # 0 = Monday; only used when weekly
    send_time: time
    timezone: str  # IANA name
    month_day: int = 1  # 1..28, or LAST_DAY; only used when monthly
    min_posts: int = 1  # hold a digest until this many posts are new ...
    max_wait: timedelta = DEFAULT_MAX_WAIT  # ... unless the oldest has waited this long

    def describe(self, instant_delay: int = 5) -> str:
        """For people: "daily at 07:30 Europe/Berlin", "weekly on Monday at 08:00 UTC",
        "monthly on day 1 at 08:00 Europe/Berlin", "instant (within 5 min)"."""
        if self.frequency is Frequency.INSTANT:
            text = f"instant (within {instant_delay} min)"
        else:
            text = f"{self.frequency}{self._day()} at {self.send_time:%H:%M} {self.timezone}"
        if self.min_posts > 1:
            text += f", once {self.min_posts} posts are new (at most {wait_text(self.max_wait)})"
        return text

    def _day(self) -> str:
        if self.frequency is Frequency.WEEKLY:
            return f" on {DAY_NAMES[self.weekday]}"
        if self.frequency is Frequency.MONTHLY:
            return " on the last day" if self.month_day == LAST_DAY else f" on day {self.month_day}"
        return ""


def wait_text(wait: timedelta) -> str:
    """A wait as people and `parse_wait` read it: "7d", "36h"."""
    hours = int(wait.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


@dataclass(frozen=True, slots=True)
class NewSubscriber:
    """A subscriber about to be stored: validated, normalised, without an id yet."""

    email: str  # normalised by email-validator (domain lower-cased)
    name: str | None
    status: SubscriberStatus
    categories: tuple[str, ...]  # term keys in the chosen order; empty = all
    schedule: Schedule
    created_at: datetime
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    given_name: str | None = None  # what the greeting calls them ("What should we call you?")

    @property
    def email_key(self) -> str:
        return email_key(self.email)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A stored subscriber with the watermark of what they have been sent."""

    id: int
    email: str
    name: str | None
    status: SubscriberStatus
    categories: tuple[str, ...]  # term keys in the chosen order; empty = all
    frequency: Frequency
    weekday: int  # 0 = Monday
    send_time: time
    timezone: str
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    watermark: datetime  # posts that became available after this are new to them
    last_digest_at: datetime | None  # the last send slot the planner dealt with (sent, empty,
    # held or missed): the next slot is the first after it
    month_day: int = 1
    min_posts: int = 1
    max_wait: timedelta = DEFAULT_MAX_WAIT
    given_name: str | None = None  # what the greeting calls them; None: see greeting_name
    # The earliest instant a plan may act for them (digests.cadence.next_due of their
    # schedule and cursor), kept by the fill; None: not known yet (read at every fill).
    next_due_at: datetime | None = None

    @property
    def schedule(self) -> Schedule:
        return Schedule(
            self.frequency,
            self.weekday,
            self.send_time,
            self.timezone,
            self.month_day,
            self.min_posts,
            self.max_wait,
        )

    @property
    def preferences(self) -> Preferences:
        return Preferences(self.schedule, self.categories, self.given_name)

    @property
    def cursor(self) -> datetime:
        """Send slots after this are still to be dealt with."""
        return self.last_digest_at or self.created_at


@dataclass(frozen=True, slots=True)
class Contact:
    """What a message to a subscriber needs of them: the address and the names."""

    email: str
    name: str | None
    given_name: str | None = None


@dataclass(frozen=True, slots=True)
class Preferences:
    """What a subscriber (or the operator for them) may change: schedule, categories (term
    keys in the chosen order; empty = all) and the given name the greeting uses."""

    schedule: Schedule
    categories: tuple[str, ...]
    given_name: str | None


class Outcome(enum.StrEnum):
    """What the planner did with a subscriber whose slot came."""

    SENT = "sent"  # a digest is queued
    EMPTY = "empty"  # nothing new: the watermark moves, nothing is sent
    HELD = "held"  # fewer than min_posts new posts: kept for the next slot
    LATE = "late"  # the slot passed more than late_after ago: merged into the next one


@dataclass(frozen=True, slots=True)
class Advance:
    """How one plan moves a subscriber: slot cursor, watermark and the send's deadline."""

    outcome: Outcome
    cursor: datetime  # new last_digest_at
    watermark: datetime | None  # new watermark; None keeps it (the posts stay pending)
    since: datetime  # the watermark before: where a cancelled late message rolls it back to
    deadline: datetime | None = None  # a send not made by then is merged into the next one


@dataclass(frozen=True, slots=True)
class DigestPost:
    """The planner's light view of a stored post."""

    id: int
    first_seen_at: datetime
    published: datetime
    draft: bool
    removed: bool
    categories: tuple[str, ...]  # category term keys, the post's own order

    @property
    def available_at(self) -> datetime:
        """When the post became new to digests: first seen, or its (later) publication time."""
        return max(self.first_seen_at, self.published)

    def backdated(self, grace: timedelta) -> bool:
        """First seen more than `grace` after its publication date: back catalogue (an old
        site imported, a first sync, files restored), never new to anyone."""
        return self.first_seen_at - self.published > grace


def email_key(email: str) -> str:
    """Uniqueness key of an address: the whole address, case-insensitive."""
    return email.strip().lower()
