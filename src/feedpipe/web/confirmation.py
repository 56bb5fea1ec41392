"""The double opt-in email: subject, text and HTML rendered with Jinja2 from web/templates/email
(the outbox builds and sends its MIME message like a digest's)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

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
