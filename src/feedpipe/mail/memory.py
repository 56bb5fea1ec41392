"""An in-memory transport for tests: records envelopes, answers with scripted outcomes."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from feedpipe.mail.model import Delivery, Envelope, Halt, Outcome, Ready, Take, unsent
from feedpipe.mail.rate import RateLimiter

SCRIPTED_REPLIES: Mapping[Outcome, tuple[int, str]] = {
    Outcome.SENT: (250, "2.0.0 Ok: queued"),
    Outcome.RETRY: (451, "4.0.0 try again (scripted)"),
    Outcome.SOFT: (452, "4.2.2 mailbox full (scripted)"),
    Outcome.THROTTLED: (421, "4.7.0 too many messages, slow down (scripted)"),
    Outcome.BLOCKED: (550, "5.7.1 sender rejected (scripted)"),
    Outcome.FAILED: (550, "5.1.1 no such user (scripted)"),
}


class MemoryTransport:
    """Like httpx.MockTransport: each recipient's scripted outcomes are used in order, then
    `default`; `down = True` makes every envelope RETRY as if the server were unreachable.
    Sends are paced through `limiter` (unlimited by default), which throttling slows down."""

    def __init__(
        self,
        script: Mapping[str, Iterable[Outcome]] | None = None,
        default: Outcome = Outcome.SENT,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter or RateLimiter()
        self.script = {rcpt: deque(outcomes) for rcpt, outcomes in (script or {}).items()}
        self.default = default
        self.down = False
        self.closed = False
        self.attempts: list[Envelope] = []  # every envelope offered, in order
        self.sent: list[Envelope] = []  # those that got SENT
        self.batches: list[int] = []  # the size of each send_many call

    def outcome_for(self, recipient: str) -> Outcome:
        queue = self.script.get(recipient)
        return queue.popleft() if queue else self.default

    async def send_many(
        self,
        envelopes: Sequence[Envelope],
        halt: Halt | None = None,
        *,
        take: Take | None = None,
        ready: Ready | None = None,
    ) -> list[Delivery]:
        self.batches.append(len(envelopes))
        deliveries: list[Delivery] = []
        for envelope in envelopes:
            await self.limiter.acquire()
            if (take is not None and not await take(envelope)) or (
                ready is not None and not await ready(envelope)
            ):
                deliveries.append(unsent(envelope, "not taken"))
                continue
            delivery = self._send(envelope)
            self.limiter.observe(delivery)
            deliveries.append(delivery)
            if halt is not None and halt(delivery):
                deliveries += [unsent(e, "sending paused") for e in envelopes[len(deliveries) :]]
                break
        return deliveries

    def _send(self, envelope: Envelope) -> Delivery:
        self.attempts.append(envelope)
        if self.down:
            return Delivery(envelope.outbox_id, Outcome.RETRY, None, "connection refused (down)")
        outcome = self.outcome_for(envelope.recipient)
        if outcome is Outcome.SENT:
            self.sent.append(envelope)
        code, reply = SCRIPTED_REPLIES[outcome]
        return Delivery(envelope.outbox_id, outcome, code, reply)

    async def aclose(self) -> None:
        self.closed = True
