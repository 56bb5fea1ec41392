"""The double opt-in email: rendered with Jinja2 from web/templates/email into a MIME message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape

from feedpipe.emails.jinja import environment
from feedpipe.model import Subscriber
from feedpipe.model.terms import clean_name
from feedpipe.settings import Settings


@cache
def _environment() -> Environment:
    return environment(
        PackageLoader("feedpipe.web", "templates/email"),
        select_autoescape(["html.j2"], default=False),
        trim_blocks=False,
    )


@dataclass(frozen=True, slots=True)
class ConfirmationEmail:
    """The rendered parts of one confirmation email."""

    to: str
    name: str | None
    subject: str
    text: str
    html: str


def render_confirmation(
    settings: Settings, subscriber: Subscriber, confirm_url: str
) -> ConfirmationEmail:
    """Subject, plain text and HTML asking `subscriber` to follow `confirm_url`."""
    env = _environment()
    values = {
        "site": settings.site,
        "name": subscriber.name,
        "email": subscriber.email,
        "confirm_url": confirm_url,
    }
    subject = clean_name(env.get_template("confirm_subject.txt.j2").render(values))
    return ConfirmationEmail(
        to=subscriber.email,
        name=subscriber.name,
        subject=subject,
        text=env.get_template("confirm.txt.j2").render(values),
        html=env.get_template("confirm.html.j2").render(values),
    )


def confirmation_message(
    settings: Settings, mail: ConfirmationEmail, message_id: str, now: datetime
) -> EmailMessage:
    """The whole message; the stdlib refuses CR/LF in any header value."""
    msg = EmailMessage()
    sender = settings.email
    msg["From"] = Address(sender.from_name or settings.site.title, addr_spec=sender.from_address)
    msg["To"] = Address(clean_name(mail.name or ""), addr_spec=mail.to)
    msg["Subject"] = mail.subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if sender.reply_to:
        msg["Reply-To"] = sender.reply_to
    msg.set_content(mail.text)
    msg.add_alternative(mail.html, subtype="html")
    return msg


def confirmation_message_id(settings: Settings, subscriber_id: int, now: datetime) -> str:
    host = urlsplit(settings.site.url).hostname or "localhost"
    return f"<confirm.{subscriber_id}.{int(now.timestamp())}@{host}>"
