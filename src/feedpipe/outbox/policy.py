"""Pure delivery policy: Message-IDs, backoff with full jitter, outcome → decision."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from feedpipe.mail import Delivery, Outcome
from feedpipe.model import ClaimedMessage, Decision, OutboxState

BASE_DELAY = 30.0  # seconds before the first retry (upper bound of its jitter)
MAX_DELAY = 3600.0  # backoff cap
# Outcomes whose attempts count toward max_attempts (then failed, never a bounce), so the backoff
# grows and a relay that always says 451 ends in `failed` with its reply. BLOCKED (a sender or
# policy problem) does not: the message is kept until the sender is fixed (the breaker pauses).
COUNTED = frozenset({Outcome.RETRY, Outcome.SOFT, Outcome.THROTTLED})


def message_id(edition_key: str, subscriber_id: int, from_address: str) -> str:
    """The stable Message-ID of a subscriber's copy of an edition (resends keep it)."""
    return message_ids(edition_key, from_address)(subscriber_id)


def message_ids(edition_key: str, from_address: str) -> Callable[[int], str]:
    """`message_id` of this edition for any subscriber, its fixed parts made once."""
    domain = from_address.rpartition("@")[2] or "localhost"
    head, tail = f"<{edition_key[:16]}.", f"@{domain}>"
    return lambda subscriber_id: f"{head}{subscriber_id}{tail}"


def backoff(
    attempt: int, rng: random.Random, base: float = BASE_DELAY, cap: float = MAX_DELAY
) -> float:
    """Full jitter: uniform in [0, min(cap, base · 2^(attempt-1))] seconds."""
    return rng.uniform(0.0, backoff_bound(attempt, base, cap))


def backoff_bound(attempt: int, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """The upper bound of `backoff` for this attempt number (1 = first retry)."""
    return min(cap, base * 2.0 ** min(max(attempt, 1) - 1, 30))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How outcomes become decisions: attempt limit, backoff base and cap, and the random source."""

    max_attempts: int
    rng: random.Random
    base: float = BASE_DELAY
    cap: float = MAX_DELAY

    def later(self, attempt: int, now: datetime) -> datetime:
        return now + timedelta(seconds=backoff(attempt, self.rng, self.base, self.cap))

    def decide(
        self, message: ClaimedMessage, delivery: Delivery, now: datetime, outage: bool = False
    ) -> Decision:
        """The state to record for one delivery (`outage`: the server could not be reached)."""
        sub = message.recipient.subscriber_id
        code, reply = delivery.code, delivery.reply[:1000]
        ident = message.outbox_id
        if delivery.outcome is Outcome.SENT:
            return Decision(ident, sub, OutboxState.SENT, None, True, code, reply)
        if delivery.outcome is Outcome.FAILED:
            bounce = code is not None  # a recipient hard reply; a local refusal is no bounce
            return Decision(ident, sub, OutboxState.FAILED, None, True, code, reply, bounce)
        if delivery.outcome is Outcome.UNSENT:  # not attempted: due again at once, as it was
            back = OutboxState.QUEUED if message.attempts <= 1 else OutboxState.RETRY
            return Decision(ident, sub, back, now, False, code, reply)
        counted = delivery.outcome in COUNTED and not outage
        attempts = message.attempts if counted else message.attempts - 1
        if counted and attempts >= self.max_attempts:
            return Decision(ident, sub, OutboxState.FAILED, None, True, code, reply)
        when = self.later(max(attempts, 1), now)
        return Decision(ident, sub, OutboxState.RETRY, when, counted, code, reply)


def is_outage(deliveries: Sequence[Delivery]) -> bool:
    """No delivery of a batch got a server reply (the rest were not attempted): the server is
    down."""
    tried = [d for d in deliveries if d.outcome is not Outcome.UNSENT]
    return bool(tried) and all(
        d.outcome is Outcome.RETRY and d.code is None and not d.content_sent for d in tried
    )


def unbuildable(message: ClaimedMessage, reason: str) -> Delivery:
    """The delivery recorded for a message whose bytes cannot be built (no bounce)."""
    return Delivery(message.outbox_id, Outcome.FAILED, None, f"not sent: {reason}")
