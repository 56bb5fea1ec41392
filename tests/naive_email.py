"""The naive baseline (benchmarks and tests only, not a production builder): every recipient's
message rendered from scratch and built with `email.message`."""

from __future__ import annotations

from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from feedpipe.emails.mime import check_message_id, clean_name
from feedpipe.emails.render import EmailRenderer, default_list_id
from feedpipe.model import EditionContent, Recipient
from feedpipe.model.text import clean_line


def render_message(
    renderer: EmailRenderer,
    content: EditionContent,
    recipient: Recipient,
    message_id: str,
    date: datetime,
    shown: int | None = None,
) -> bytes:
    """One recipient's message rendered from scratch (Jinja2 + inlining + EmailMessage).

    This is what `personalize` avoids; tests/test_email_render.py compares the two and
    benchmarks/digests.py uses it as the naive baseline. `shown` limits the posts listed, as
    `RenderedEdition.shown_count` does.
    """
    name = clean_name(recipient.name)
    view = renderer.view(content, shown)
    parts = renderer.render_parts(view, renderer.real_recipient(recipient, name, view))
    message = EmailMessage(policy=policy.SMTP)
    _headers(message, renderer, parts.subject, recipient, name, message_id, date)
    message.set_content(parts.text, cte="quoted-printable")
    message.add_alternative(parts.html, subtype="html", cte="quoted-printable")
    return message.as_bytes()


def _headers(
    message: EmailMessage,
    renderer: EmailRenderer,
    subject: str,
    recipient: Recipient,
    name: str,
    message_id: str,
    date: datetime,
) -> None:
    email = renderer.settings.email
    message["From"] = Address(
        clean_line(email.from_name or renderer.site.title), addr_spec=email.from_address
    )
    message["To"] = Address(name, addr_spec=recipient.email)
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = check_message_id(message_id)
    if email.reply_to:
        message["Reply-To"] = email.reply_to
    message["List-Id"] = f"{renderer.site.title} <{default_list_id(renderer.settings)}>"
    unsubscribe = f"<{recipient.unsubscribe_url}>"
    if email.unsubscribe_mailto:
        unsubscribe += f", <mailto:{email.unsubscribe_mailto.removeprefix('mailto:')}>"
    message["List-Unsubscribe"] = unsubscribe
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Precedence"] = "bulk"
    message["Auto-Submitted"] = "auto-generated"
    if email.feedback_id:
        message["Feedback-ID"] = email.feedback_id
