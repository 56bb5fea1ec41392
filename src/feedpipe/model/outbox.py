"""Frozen outbox types: states, rows to write, claimed messages, decisions and reports."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the outbox states load without the post types
    from feedpipe.model.emails import Recipient
    from feedpipe.model.subscribers import Advance


class OutboxState(enum.StrEnum):
    """Where a message stands: queued → sending → sent | retry | failed | bounced | cancelled."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    BOUNCED = "bounced"
    CANCELLED = "cancelled"


# States a dispatcher may claim (SENDING only once its lease has run out).
CLAIMABLE = (OutboxState.QUEUED, OutboxState.RETRY, OutboxState.SENDING)
# States that may still be cancelled when a subscriber stops getting mail.
PENDING = (OutboxState.QUEUED, OutboxState.RETRY)


class MessageKind(enum.StrEnum):
    """What a message is."""

    DIGEST = "digest"
    CONFIRM = "confirm"
    LINKS = "links"  # a subscriber's own unsubscribe and preferences links, on request


@dataclass(frozen=True, slots=True)
class NewEdition:
    """A rendered edition to store once: its MIME template serialised by `MimeTemplate.dump`."""

    key: str
    subject: str
    post_ids: tuple[int, ...]
    template: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One outbox row to write: everything needed to produce the exact message again."""

    edition_key: str
    recipient: Recipient
    message_id: str
    kind: MessageKind = MessageKind.DIGEST
    since: datetime | None = None  # the subscriber's watermark before this digest
    deadline: datetime | None = None  # not sent by then: cancelled, watermark back to `since`


@dataclass(frozen=True, slots=True)
class OutboxFill:
    """What one fill writes in one transaction: editions, messages and how subscribers move."""

    now: datetime
    editions: tuple[NewEdition, ...] = ()
    messages: tuple[NewMessage, ...] = ()
    advances: Mapping[int, Advance] = field(default_factory=dict)
    next_due: Mapping[int, datetime] = field(default_factory=dict)  # changed next_due_at


@dataclass(frozen=True, slots=True)
class FillReport:
    """What a fill wrote (rows already present are not counted)."""

    due: int  # subscribers whose digest was due (with or without new posts)
    editions: int  # editions rendered and stored
    queued: int  # outbox rows inserted
    held: int = 0  # due, fewer than min_posts new posts: kept for a later slot
    late: int = 0  # slots missed by more than late_after: merged into the next digest
    expired: int = 0  # queued digests past their deadline: cancelled, posts back to pending


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message leased to one dispatcher."""

    outbox_id: int
    edition_key: str
    recipient: Recipient
    message_id: str
    attempts: int  # including this one


@dataclass(frozen=True, slots=True)
class Claim:
    """One claimed batch, and how many rows the claim cancelled instead (stopped subscribers)."""

    messages: tuple[ClaimedMessage, ...]
    cancelled: int = 0
    expired: int = 0  # digests past their deadline, cancelled and merged into the next one


@dataclass(frozen=True, slots=True)
class Decision:
    """What to record for one attempt."""

    outbox_id: int
    subscriber_id: int
    state: OutboxState  # SENT, RETRY or FAILED
    next_attempt_at: datetime | None
    counted: bool  # False: the attempt does not count toward max_attempts (throttling, outage)
    code: int | None
    reply: str
    bounce: bool = False  # a permanent failure that counts toward the subscriber's bounce limit


@dataclass(frozen=True, slots=True)
class RecordReport:
    """What recording a batch changed beyond the batch itself."""

    bounced_subscribers: tuple[int, ...] = ()
    cancelled: int = 0  # queued rows of newly bounced subscribers


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed message as `feedpipe outbox` lists it."""

    outbox_id: int
    recipient: str
    edition_key: str
    attempts: int
    code: int | None
    reply: str
    at: datetime | None
    state: OutboxState = OutboxState.FAILED  # FAILED (given up) or RETRY (will be tried again)


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failing messages (failed or waiting to retry) that share one last reply."""

    state: OutboxState
    code: int | None
    reply: str
    messages: int
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class DispatchReport:
    """What a dispatch run did."""

    sent: int = 0
    retry: int = 0
    throttled: int = 0
    failed: int = 0
    cancelled: int = 0
    bounced_subscribers: int = 0
    batches: int = 0
    expired: int = 0  # digests past their deadline: cancelled, merged into the next one
    seconds: float = 0.0
    server_down: bool = False
    soft: int = 0  # recipient soft replies (mailbox full, greylisted): retried
    blocked: int = 0  # sender or policy replies: kept, nobody penalised
    paused: str | None = None  # the reply that paused sending (the breaker is open)
    down_reason: str | None = None  # why the server could not be reached (host:port, error)
    limited: str | None = None  # the shared hour budget ended the run early (and until when)

    @property
    def attempted(self) -> int:
        return self.sent + self.retry + self.throttled + self.failed + self.soft + self.blocked


@dataclass(frozen=True, slots=True)
class SendReport:
    """`feedpipe send`: the fill, then the dispatch."""

    fill: FillReport
    dispatch: DispatchReport
    counts: Mapping[OutboxState, int]


@dataclass(frozen=True, slots=True)
class SentEdition:
    """An edition at least one digest of which the server accepted (the web archive)."""

    key: str
    subject: str
    post_count: int
    template: bytes  # MimeTemplate.dump()
    sent_at: datetime  # the last message of it the server accepted
    post_ids: tuple[int, ...] = ()
    created_at: datetime | None = None  # when the fill planned and rendered it (its send)
