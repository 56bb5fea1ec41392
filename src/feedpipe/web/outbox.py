"""The Mailer over the durable outbox (issue 4): cancel, counts, the archive of sent editions.

Confirmation emails need an outbox entry point for a message that is not a digest edition;
until the outbox has one, `queue_confirmation` raises DeliveryUnavailableError naming it.
"""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import sqlalchemy as sa

from feedpipe.digests.model import Subscriber
from feedpipe.emails.mime import MimeTemplate, personalize_template
from feedpipe.emails.model import Recipient
from feedpipe.outbox.model import PENDING, MessageKind, OutboxState
from feedpipe.service import Feedpipe
from feedpipe.store.outbox import editions, outbox
from feedpipe.web.errors import DeliveryUnavailableError
from feedpipe.web.mailer import ArchivedEdition

NEEDED = (
    "the outbox has no entry point for a non-digest message yet; the web needs "
    "`OutboxService.queue_message(subscriber_id, to, message: EmailMessage, kind='confirm')` "
    "(one durable row, sent by the dispatcher like a digest, never before it is stored)"
)


@dataclass
class OutboxMailer:
    """Mailer over the store's outbox and editions tables."""

    service: Feedpipe

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        raise DeliveryUnavailableError(NEEDED)

    def cancel_queued(self, subscriber_id: int) -> int:
        """Queued and retrying messages become cancelled; one in flight cannot be stopped."""
        now = self.service.clock.now()
        stmt = (
            sa.update(outbox)
            .where(
                outbox.c.subscriber_id == subscriber_id,
                outbox.c.state.in_([s.value for s in PENDING]),
            )
            .values(state=OutboxState.CANCELLED.value, next_attempt_at=None, updated_at=now)
        )
        with self.service.store.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def editions(self, limit: int) -> list[ArchivedEdition]:
        rows = self._sent().limit(limit)
        with self.service.store.engine.connect() as conn:
            return [self._archived(r) for r in conn.execute(rows)]

    def edition(self, key: str) -> ArchivedEdition | None:
        with self.service.store.engine.connect() as conn:
            row = conn.execute(self._sent().where(editions.c.key == key)).first()
        return None if row is None else self._archived(row)

    def counts(self) -> dict[str, int]:
        return {state.value: n for state, n in self.service.store.outbox_counts().items() if n}

    @staticmethod
    def _sent() -> sa.Select[tuple[str, str, str, bytes, datetime]]:
        """Editions with at least one digest accepted by the server, newest send first."""
        sent_at = sa.func.max(outbox.c.sent_at).label("sent_at")
        return (
            sa.select(
                editions.c.key,
                editions.c.subject,
                editions.c.post_ids,
                editions.c.template,
                sent_at,
            )
            .join(outbox, outbox.c.edition_key == editions.c.key)
            .where(
                outbox.c.state == OutboxState.SENT.value,
                outbox.c.kind == MessageKind.DIGEST.value,
            )
            .group_by(editions.c.key, editions.c.subject, editions.c.post_ids, editions.c.template)
            .order_by(sent_at.desc(), editions.c.key)
        )

    def _archived(self, row: sa.Row[tuple[str, str, str, bytes, datetime]]) -> ArchivedEdition:
        html = public_html(self.service, MimeTemplate.load(row.template), row.sent_at)
        count = row.post_ids.count(",") + 1 if row.post_ids.strip("[] ") else 0
        return ArchivedEdition(row.key, row.subject, row.sent_at, html, count)


def public_html(service: Feedpipe, template: MimeTemplate, sent_at: datetime) -> str:
    """The edition's HTML part with neutral personal fields (links lead to the subscribe page)."""
    base = service.settings.web.base_url
    host = urlsplit(base).hostname or "localhost"
    reader = Recipient(0, f"archive@{host}", None, f"{base}/subscribe", f"{base}/subscribe")
    data = personalize_template(template, reader, f"<archive@{host}>", sent_at)
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    return "" if part is None else str(part.get_content())
