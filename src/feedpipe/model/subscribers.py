"""Frozen digest domain types: subscribers, the planner's post view, plans and editions."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, time

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands; only ACTIVE subscribers get digests."""

    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"  # confirmed, asked for no digests until they resume
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Frequency(enum.StrEnum):
    """How often a subscriber gets a digest."""

    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a subscriber's digest goes out, in their own time zone."""

    frequency: Frequency
    weekday: int  # 0 = Monday; only used when weekly
    send_time: time
    timezone: str  # IANA name

    def describe(self) -> str:
        day = f" {WEEKDAYS[self.weekday]}" if self.frequency is Frequency.WEEKLY else ""
        return f"{self.frequency}{day} {self.send_time:%H:%M} {self.timezone}"


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
    last_digest_at: datetime | None  # last time a digest was due and planned (sent or empty)

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.frequency, self.weekday, self.send_time, self.timezone)


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


def email_key(email: str) -> str:
    """Uniqueness key of an address: the whole address, case-insensitive."""
    return email.strip().lower()
