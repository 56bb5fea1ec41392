"""Helpers for outbox tests: settings, subscribers, a rendered edition, queued messages."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from feedpipe.emails.render import EmailRenderer
from feedpipe.model import (
    DigestSection,
    EditionContent,
    Frequency,
    NewEdition,
    NewSubscriber,
    OutboxFill,
    Post,
    Recipient,
    Schedule,
    SubscriberStatus,
    Term,
    TermKind,
)
from feedpipe.outbox.fill import new_messages
from feedpipe.settings import Settings, settings_from_mapping
from feedpipe.store import Store

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SENDER = "digest@blog.example.com"


def settings(tmp_path: Path, url: str, **email: Any) -> Settings:
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(tmp_path / "posts")},
        "store": {"url": url},
        "web": {"base_url": "https://news.example.com"},
        "email": {"from_address": SENDER, "outbox_dir": str(tmp_path / "eml"), **email},
    }
    return settings_from_mapping(data, tmp_path, "test", {})


def add_subscribers(store: Store, count: int, start: int = 0) -> list[int]:
    """`count` active subscribers user<N>@example.com; returns their ids in order."""
    schedule = Schedule(Frequency.DAILY, 0, time(8, 0), "UTC")
    rows = [
        NewSubscriber(
            f"user{i}@example.com", f"User {i}", SubscriberStatus.ACTIVE, (), schedule, T0, T0
        )
        for i in range(start, start + count)
    ]
    store.import_subscribers(rows)
    emails = {r.email for r in rows}
    return [s.id for s in store.subscribers() if s.email in emails]


def post(post_id: int, title: str = "Hello") -> Post:
    rust = Term(TermKind.CATEGORY, "Rust", "rust", "rust")
    return Post(
        post_id, f"urn:p{post_id}", f"p{post_id}", f"https://blog.example.com/p{post_id}/",
        title, "A summary.", "<p>Body</p>", T0, None, (rust,), (), None, None, None, 2, False,
        hashlib.sha256(title.encode()).hexdigest(), T0,
    )  # fmt: skip


def edition(config: Settings, post_id: int = 1) -> NewEdition:
    """A real edition rendered by EmailRenderer (key derived from the post id)."""
    key = hashlib.sha256(f"edition-{post_id}".encode()).hexdigest()
    content = EditionContent(key, (DigestSection("Rust", "rust", (post(post_id),)),))
    rendered = EmailRenderer(config).render_edition(content)
    return NewEdition(key, rendered.subject, (post_id,), rendered.template.dump(), T0)


def recipient(sub_id: int) -> Recipient:
    return Recipient(
        sub_id,
        f"user{sub_id}@example.com",
        f"User {sub_id}",
        f"https://news.example.com/u/{sub_id}",
        f"https://news.example.com/p/{sub_id}",
    )


def queue(
    store: Store, new: NewEdition, sub_ids: Sequence[int], now: datetime = T0
) -> tuple[int, int]:
    """Write one edition and a message per subscriber; returns (editions, messages) inserted."""
    messages = tuple(new_messages(new.key, [recipient(i) for i in sub_ids], SENDER))
    _, editions, added = store.fill_outbox(lambda: OutboxFill(now, (new,), messages))
    return editions, added


def message_id_of(data: bytes) -> str:
    """The Message-ID header value of raw message bytes."""
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    return ""
