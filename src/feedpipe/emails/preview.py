"""Write the next digest for one recipient as .html, .txt and a complete .eml (for previews)."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

from feedpipe.emails.render import EmailRenderer, personalize
from feedpipe.model import EditionContent, Recipient


def preview_message_id(renderer: EmailRenderer, edition_key: str, subscriber_id: int) -> str:
    """A Message-ID for previews, on the site's host."""
    host = urlsplit(renderer.settings.site.url).hostname or "localhost"
    return f"<preview.{edition_key[:16]}.{subscriber_id}@{host}>"


def write_preview(
    renderer: EmailRenderer,
    content: EditionContent,
    recipient: Recipient,
    out_dir: Path,
    now: datetime | None = None,
) -> list[Path]:
    """Render `content` for `recipient` into out_dir: digest-KEY.html, .txt and .eml."""
    edition = renderer.render_edition(content)
    message_id = preview_message_id(renderer, content.key, recipient.subscriber_id)
    data = personalize(edition, recipient, message_id, now or datetime.now(UTC))
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    text, html = (part.get_content().replace("\r\n", "\n") for part in parsed.iter_parts())
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"digest-{content.key[:16]}"
    paths = [stem.with_suffix(".html"), stem.with_suffix(".txt"), stem.with_suffix(".eml")]
    paths[0].write_text(html, encoding="utf-8")
    paths[1].write_text(text, encoding="utf-8")
    paths[2].write_bytes(data)
    return paths
