"""The transport contract: envelopes in, one delivery outcome per envelope out."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

THROTTLE_CODES = frozenset({421, 451, 452, 454})


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message to one recipient, as final bytes (CRLF line ends)."""

    outbox_id: int
    sender: str
    recipient: str
    data: bytes


class Outcome(enum.StrEnum):
    """What became of one envelope."""

    SENT = "sent"
    RETRY = "retry"
    THROTTLED = "throttled"
    FAILED = "failed"  # permanent: 5xx on RCPT or DATA


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome for one envelope, with the server's reply (or the local reason)."""

    outbox_id: int
    outcome: Outcome
    code: int | None
    reply: str


class Transport(Protocol):
    """Sends envelopes; never raises for per-message or connection failures.

    Every transport paces itself through its own `feedpipe.mail.rate.RateLimiter` (one token
    per message, slowed down by throttling replies); the dispatcher never paces.
    """

    async def send_many(self, envelopes: Sequence[Envelope]) -> list[Delivery]:
        """One Delivery per envelope, in the same order."""
        ...

    async def aclose(self) -> None:
        """Release every connection or resource."""
        ...


class Stage(enum.StrEnum):
    """Where in an SMTP transaction a reply came from."""

    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"  # the 354 go-ahead
    FINAL = "final"  # the reply after the message content


def classify(code: int, stage: Stage) -> Outcome:
    """Map an SMTP reply code at a stage to an outcome.

    2xx/3xx-as-expected is decided by the caller; here: throttling codes, other 4xx,
    and 5xx, which is permanent for the recipient except at MAIL (a sender problem).
    """
    if 200 <= code < 300:
        return Outcome.SENT
    if code in THROTTLE_CODES:
        return Outcome.THROTTLED
    if 500 <= code < 600 and stage is not Stage.MAIL:
        return Outcome.FAILED
    return Outcome.RETRY


def retry(envelope: Envelope, reason: str) -> Delivery:
    """A RETRY delivery with a local reason (no server reply)."""
    return Delivery(envelope.outbox_id, Outcome.RETRY, None, reason)
