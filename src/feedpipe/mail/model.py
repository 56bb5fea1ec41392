"""The transport contract: envelopes in, one delivery outcome per envelope out."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message to one recipient, as final bytes (CRLF line ends)."""

    outbox_id: int
    sender: str
    recipient: str
    data: bytes
    # True when `data` is known to have CRLF line ends only, no bare CR or LF (feedpipe's own
    # messages: emails.mime builds them so, a property test checks): the SMTP transport then
    # skips its two scans for bare line ends and only dot-stuffs
    crlf: bool = False


class Outcome(enum.StrEnum):
    """What became of one envelope."""

    SENT = "sent"
    RETRY = "retry"  # no reply, or a reply of unknown meaning: retried up to max_attempts
    SOFT = "soft"  # recipient soft (mailbox full, greylisted): retried, counted
    THROTTLED = "throttled"  # slow down: retried, not counted
    BLOCKED = "blocked"  # a sender or policy problem: nobody penalised, kept for retry
    FAILED = "failed"  # recipient hard (bad mailbox or domain): a bounce
    UNSENT = "unsent"  # not attempted: the batch was halted (sending paused)


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome for one envelope, with the server's reply (or the local reason)."""

    outbox_id: int
    outcome: Outcome
    code: int | None
    reply: str
    # RETRY without a reply after the message's end went out: the server may have it (so it
    # is recorded at once, like an answer, and it is no sign of a server that is down)
    content_sent: bool = False


# Hears each delivery of a batch as it is made, until it returns True: then nothing more of the
# batch is attempted (messages already in flight finish; their deliveries are not heard).
Halt = Callable[[Delivery], bool]
# Asked as a connection takes each envelope, just before it is sent: False leaves it UNSENT.
Take = Callable[[Envelope], Awaitable[bool]]
# Awaited by a connection just before the server can accept this envelope (the end of its
# content): True once the connection's previous answer is recorded, False (send nothing,
# leave it UNSENT) when recording has stopped or the row is no longer this worker's.
Ready = Callable[[Envelope], Awaitable[bool]]


class Transport(Protocol):
    """Sends envelopes; never raises for per-message or connection failures.

    Every transport paces itself through its own `feedpipe.mail.rate.RateLimiter` (one token
    per message, slowed down by throttling replies); the configured limits are the
    dispatcher's shared budget, which it applies in `take`.
    """

    async def send_many(
        self,
        envelopes: Sequence[Envelope],
        halt: Halt | None = None,
        *,
        take: Take | None = None,
        ready: Ready | None = None,
    ) -> list[Delivery]:
        """One Delivery per envelope, in the same order; once `halt` says True, the envelopes
        not yet started are UNSENT, and so is each one `take` or `ready` refuses."""
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


def retry(envelope: Envelope, reason: str, content_sent: bool = False) -> Delivery:
    """A RETRY delivery with a local reason (no server reply)."""
    return Delivery(envelope.outbox_id, Outcome.RETRY, None, reason, content_sent)


def unsent(envelope: Envelope, reason: str) -> Delivery:
    """An UNSENT delivery: the envelope was not attempted."""
    return Delivery(envelope.outbox_id, Outcome.UNSENT, None, f"not sent: {reason}")
