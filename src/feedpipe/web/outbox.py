"""The Mailer over the durable outbox (issue 4): confirmations, cancel, counts, the archive."""

from __future__ import annotations

import email
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from urllib.parse import urlsplit

from feedpipe.emails.i18n import language
from feedpipe.emails.mime import MimeTemplate, personalize_template
from feedpipe.model import MessageKind, Recipient, SentEdition, Subscriber
from feedpipe.outbox.archive import Issue, parse_day
from feedpipe.service import Feedpipe
from feedpipe.web.confirmation import render_confirmation, render_links
from feedpipe.web.mailer import ArchivedEdition


@dataclass
class OutboxMailer:
    """Mailer over the durable outbox: confirmations are queued like digests."""

    service: Feedpipe

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        """One confirmation message, stored in the outbox before anything is sent."""
        mail = render_confirmation(self.service.settings, subscriber, confirm_url)
        recipient = self.service.subscriptions.links.recipient(subscriber)
        self.service.outbox.queue_message(
            recipient, mail.subject, mail.text, mail.html, MessageKind.CONFIRM
        )

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        """One email with the subscriber's own links, stored in the outbox before sending."""
        mail = render_links(self.service.settings, subscriber, links)
        self.service.outbox.queue_message(
            links, mail.subject, mail.text, mail.html, MessageKind.LINKS
        )

    def cancel_queued(self, subscriber_id: int) -> int:
        """Queued and retrying messages become cancelled; one in flight cannot be stopped."""
        return self.service.outbox.cancel(subscriber_id)

    def editions(self, limit: int) -> list[ArchivedEdition]:
        """The archive's entries: one issue per send day (outbox/archive.py), newest first."""
        return [self._listed(issue) for issue in self.service.outbox.issues(limit)]

    def edition(self, key: str) -> ArchivedEdition | None:
        """An issue ("2026-11-21"), or one edition by its key (the "view in your browser"
        link: exactly what that reader got, with neutral personal fields)."""
        day = parse_day(key)
        if day is not None:
            found = self.service.outbox.issue_page(day, archive_reader(self.service))
            return None if found is None else self._listed(found[0], found[1])
        sent = self.service.outbox.sent_editions(1, key)
        return self._archived(sent[0]) if sent else None

    def _listed(self, issue: Issue, html: str = "") -> ArchivedEdition:
        settings = self.service.settings
        title = f"{settings.site.title}: {language(settings.site.language).long_date(issue.day)}"
        return ArchivedEdition(
            issue.key, title, issue.sent_at, html, len(issue.post_ids), issue.day
        )

    def counts(self) -> dict[str, int]:
        return {state.value: n for state, n in self.service.outbox.counts().items() if n}

    def _archived(self, sent: SentEdition) -> ArchivedEdition:
        html = public_html(self.service, MimeTemplate.load(sent.template), sent.sent_at)
        return ArchivedEdition(sent.key, sent.subject, sent.sent_at, html, sent.post_count)


def archive_reader(service: Feedpipe) -> Recipient:
    """The neutral reader of archive pages: no name; Unsubscribe and Change preferences lead
    to /unsubscribe, which tells a reader how to reach their own links."""
    base = service.settings.web.base_url
    host = urlsplit(base).hostname or "localhost"
    return Recipient(0, f"archive@{host}", None, f"{base}/unsubscribe", f"{base}/unsubscribe")


def public_html(service: Feedpipe, template: MimeTemplate, sent_at: datetime) -> str:
    """The edition's HTML part with neutral personal fields (archive_reader)."""
    reader = archive_reader(service)
    host = reader.email.partition("@")[2]
    data = personalize_template(template, reader, f"<archive@{host}>", sent_at)
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    return "" if part is None else str(part.get_content())
