"""The plain personalisation (every slot encoded for every message): what the fast one equals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from feedpipe.emails.mime import (
    NAME_MARK,
    MimeTemplate,
    check_address,
    check_message_id,
    check_url,
    clean_name,
    encode_slot,
    format_to,
    greeting_name,
)
from feedpipe.errors import ValidationError
from feedpipe.model import Recipient


@dataclass(frozen=True, slots=True)
class RecipientValues:
    """A recipient's values, cleaned and checked, ready to be encoded into each context."""

    name: str
    greeting: str
    intro: str
    email: str
    unsubscribe_url: str
    preferences_url: str

    def field(self, name: str) -> str:
        value: str = getattr(self, name)
        return value


def recipient_values(template: MimeTemplate, recipient: Recipient) -> RecipientValues:
    """Clean the name, check the address and URLs; raise ValidationError for unsafe values."""
    name = clean_name(recipient.name)
    called = greeting_name(name, recipient.given_name)
    greeting = (
        template.greeting_named.replace(NAME_MARK, called) if called else template.greeting_anon
    )
    return RecipientValues(
        name=name,
        greeting=greeting,
        intro=template.intro_first if recipient.first else template.intro_next,
        email=check_address(recipient.email),
        unsubscribe_url=check_url(recipient.unsubscribe_url),
        preferences_url=check_url(recipient.preferences_url),
    )


def header_values(values: RecipientValues, message_id: str, date: datetime) -> dict[str, str]:
    """The per-message header values."""
    if date.tzinfo is None:
        raise ValidationError("the Date of a message must be timezone-aware")
    return {
        "to": format_to(values.name, values.email),
        "date": format_datetime(date),
        "message_id": check_message_id(message_id),
        "unsubscribe_url": values.unsubscribe_url,
    }


def personalize_reference(
    template: MimeTemplate,
    recipient: Recipient,
    message_id: str,
    date: datetime,
) -> bytes:
    """One recipient's message: the template with each placeholder replaced by its value."""
    values = recipient_values(template, recipient)
    headers = header_values(values, message_id, date)
    encoded = {
        (ctx, field): encode_slot(ctx, headers[field] if ctx == "h" else values.field(field))
        for ctx, field in template.distinct_slots
    }
    out: list[bytes] = [b""] * (2 * len(template.slots) + 1)
    out[0::2] = template.chunks
    out[1::2] = [encoded[slot] for slot in template.slots]
    return b"".join(out)
