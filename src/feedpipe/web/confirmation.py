"""The double opt-in email and the "your links" email: subject, text and HTML rendered with
Jinja2 from web/templates/email (the outbox builds and sends their MIME like a digest's)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape

from feedpipe.emails.jinja import environment
from feedpipe.model import Recipient, Subscriber
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
    return _render("confirm", settings, subscriber, confirm_url=confirm_url)


def render_links(settings: Settings, subscriber: Subscriber, links: Recipient) -> ConfirmationEmail:
    """Subject, plain text and HTML giving `subscriber` their unsubscribe and preferences links."""
    return _render(
        "links",
        settings,
        subscriber,
        unsubscribe_url=links.unsubscribe_url,
        preferences_url=links.preferences_url,
    )


def _render(
    stem: str, settings: Settings, subscriber: Subscriber, **urls: str
) -> ConfirmationEmail:
    env = _environment()
    values = {"site": settings.site, "name": subscriber.name, "email": subscriber.email, **urls}
    subject = clean_name(env.get_template(f"{stem}_subject.txt.j2").render(values))
    return ConfirmationEmail(
        to=subscriber.email,
        name=subscriber.name,
        subject=subject,
        text=env.get_template(f"{stem}.txt.j2").render(values),
        html=env.get_template(f"{stem}.html.j2").render(values),
    )
