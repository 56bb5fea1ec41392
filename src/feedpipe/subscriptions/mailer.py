"""What subscriptions ask of delivery (SubscriberMailer), and the store-backed default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from feedpipe.clock import Clock
from feedpipe.errors import OutboxError
from feedpipe.model import Recipient, Subscriber
from feedpipe.store import Store


class SubscriberMailer(Protocol):
    """Queues the double opt-in email and cancels queued mail; web/outbox.py wires the outbox."""

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        """Queue the confirmation email asking `subscriber` to follow `confirm_url`."""
        ...

    def cancel_queued(self, subscriber_id: int) -> int:
        """Cancel every message not yet sent to this subscriber; how many were cancelled."""
        ...

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        """Queue an email with the subscriber's own unsubscribe and preferences links."""
        ...


@dataclass
class StoreMailer:
    """The default: cancels in the store's outbox; confirmations need a wired mailer."""

    store: Store
    clock: Clock

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        raise OutboxError("no mailer for confirmation emails: use SubscriptionService.with_mailer")

    def cancel_queued(self, subscriber_id: int) -> int:
        return self.store.cancel_outbox(subscriber_id, self.clock.now())

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        raise OutboxError("no mailer for link emails: use SubscriptionService.with_mailer")
