"""The narrow delivery interface the web needs (Mailer), and an in-memory implementation."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from feedpipe.model import Recipient, Subscriber
from feedpipe.subscriptions.mailer import SubscriberMailer


@dataclass(frozen=True, slots=True)
class ArchivedEdition:
    """One sent digest edition as the public archive shows it (no personal links)."""

    key: str
    subject: str
    sent_at: datetime
    html: str  # the edition's web version, a whole HTML document ("" in listings)
    post_count: int = 0
    day: date | None = None  # an issue's send day (site time zone); None: the sent date


class Mailer(SubscriberMailer, Protocol):
    """What the web asks of delivery (the outbox); see web/outbox.py for the real adapter.
    Confirmations are rendered from web/templates/email."""

    def editions(self, limit: int) -> list[ArchivedEdition]:
        """Sent editions, newest first."""
        ...

    def edition(self, key: str) -> ArchivedEdition | None: ...

    def counts(self) -> dict[str, int]:
        """Outbox messages by state (queued, sending, sent, retry, failed, bounced)."""
        ...


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message held by MemoryMailer."""

    subscriber_id: int
    kind: str  # "confirmation", "links" or "digest"
    to: str
    body: str  # the confirmation URL, the unsubscribe URL, or the digest's edition key
    state: str = "queued"


@dataclass
class MemoryMailer:
    """Keeps messages in memory: for tests, the demo without an outbox, and the browser test."""

    messages: list[QueuedMessage] = field(default_factory=list)
    archive: list[ArchivedEdition] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        self._add(QueuedMessage(subscriber.id, "confirmation", subscriber.email, confirm_url))

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        self._add(QueuedMessage(subscriber.id, "links", subscriber.email, links.unsubscribe_url))

    def queue_digest(self, subscriber_id: int, email: str, edition_key: str) -> None:
        self._add(QueuedMessage(subscriber_id, "digest", email, edition_key))

    def cancel_queued(self, subscriber_id: int) -> int:
        with self._lock:
            hit = [i for i, m in enumerate(self.messages) if self._cancellable(m, subscriber_id)]
            for index in hit:
                old = self.messages[index]
                self.messages[index] = QueuedMessage(
                    old.subscriber_id, old.kind, old.to, old.body, "cancelled"
                )
        return len(hit)

    def editions(self, limit: int) -> list[ArchivedEdition]:
        newest = sorted(self.archive, key=lambda e: e.sent_at, reverse=True)
        return newest[:limit]

    def edition(self, key: str) -> ArchivedEdition | None:
        return next((e for e in self.archive if e.key == key), None)

    def counts(self) -> dict[str, int]:
        return dict(Counter(m.state for m in self.messages))

    def queued(self, kind: str | None = None, to: str | None = None) -> list[QueuedMessage]:
        """Messages still queued, optionally of one kind or to one address."""
        return [
            m
            for m in self.messages
            if m.state == "queued" and kind in (None, m.kind) and to in (None, m.to)
        ]

    def _add(self, message: QueuedMessage) -> None:
        with self._lock:
            self.messages.append(message)

    @staticmethod
    def _cancellable(message: QueuedMessage, subscriber_id: int) -> bool:
        return message.subscriber_id == subscriber_id and message.state == "queued"
