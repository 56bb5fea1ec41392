"""Frozen list-hygiene types: suppressions, delivery events (bounces, complaints), inbound mail."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: `feedpipe --help` loads this module for its choices
    from feedpipe.model.outbox import OutboxState
    from feedpipe.model.subscribers import Action


class SuppressionReason(enum.StrEnum):
    """Why an address is never mailed again (until a new double opt-in)."""

    BOUNCE = "bounce"  # a hard bounce (or bounce_limit permanent SMTP failures)
    SOFT_BOUNCE = "soft-bounce"  # soft bounces reached [email] soft_bounce_limit in the window
    COMPLAINT = "complaint"  # a spam complaint (ARF feedback report)
    MANUAL = "manual"  # an operator (`feedpipe suppressions add`, admin API)


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry of the suppression list."""

    email: str
    reason: SuppressionReason
    source: str  # where it came from: smtp, dsn, bounce, arf, cli, api
    created_at: datetime
    detail: str = ""  # the reply or status that caused it


class EventKind(enum.StrEnum):
    """What came back about a message that was sent."""

    HARD = "hard"  # a hard bounce
    SOFT = "soft"  # a soft bounce (counted toward the soft-bounce limit)
    COMPLAINT = "complaint"  # a spam complaint


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """A bounce or complaint about one recipient, tied to the outbox message when known."""

    kind: EventKind
    recipient: str
    at: datetime
    source: str  # smtp, dsn, bounce, arf
    detail: str = ""
    subscriber_id: int | None = None
    outbox_id: int | None = None
    edition_key: str | None = None


class InboundStatus(enum.StrEnum):
    """What became of one inbound message."""

    PROCESSED = "processed"  # recognised and applied (or recognised and ignored on purpose)
    UNPROCESSED = "unprocessed"  # not recognised, or not ours: kept for the operator


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One inbound message as stored (deduplicated by its key: the Message-ID)."""

    key: str
    received_at: datetime
    status: InboundStatus
    kind: str  # dsn, bounce, complaint, auto-reply, unsubscribe, unknown
    summary: str  # From and Subject, and what was done or why not
    raw: bytes | None = None  # kept for unprocessed messages


@dataclass(frozen=True, slots=True)
class Rates:
    """Bounce and complaint rates over some messages: per edition, or over a period."""

    label: str  # the edition key, or "7d" / "30d"
    sent: int
    bounces: int
    complaints: int

    @property
    def bounce_rate(self) -> float:
        return self.bounces / self.sent if self.sent else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


@dataclass(frozen=True, slots=True)
class MessageRef:
    """An outbox message as inbound mail (a bounce, a complaint) finds it."""

    outbox_id: int
    subscriber_id: int
    edition_key: str
    recipient: str
    message_id: str
    state: OutboxState


@dataclass(frozen=True, slots=True)
class Effect:
    """What one inbound message does to one address: an event, a suppression, an action."""

    address: str
    event: DeliveryEvent | None = None
    suppression: Suppression | None = None
    action: Action | None = None


@dataclass(frozen=True, slots=True)
class SoftLimit:
    """Soft bounces since `since` that suppress an address (`[email] soft_bounce_*`)."""

    limit: int
    since: datetime
