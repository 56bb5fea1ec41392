"""The web over the real outbox: subscribe → confirm → digest sent → archive → one-click → silence.

Confirmation emails are captured by the test (the outbox has no non-digest entry point yet);
digests go through the real fill and dispatcher with the in-memory transport.
"""

from __future__ import annotations

import asyncio
import email
import re
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.digests.model import Subscriber, SubscriberStatus
from feedpipe.mail import MemoryTransport
from feedpipe.web import WebConfig, create_app
from feedpipe.web.errors import DeliveryUnavailableError
from feedpipe.web.outbox import OutboxMailer
from tests.test_web_helpers import SECRET, make_web

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@dataclass
class CapturingMailer(OutboxMailer):
    """The real outbox for everything but confirmations, which are kept here."""

    confirm_urls: list[tuple[str, str]] = field(default_factory=list)

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        self.confirm_urls.append((subscriber.email, confirm_url))


def new_post(posts: Path, slug: str) -> None:
    (posts / f"{slug}.md").write_text(
        f"---\ntitle: {slug}\ndate: 2026-11-21T00:00:00Z\ncategories: [Rust]\n---\nBody.\n",
        encoding="utf-8",
    )


def dispatch(w_fp: object, transport: MemoryTransport) -> None:
    asyncio.run(w_fp.outbox.dispatch(transport))  # type: ignore[attr-defined]


def test_full_flow_over_the_outbox(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    mailer = CapturingMailer(w.fp)
    client = TestClient(create_app(w.fp, mailer, WebConfig()), base_url=w.fp.settings.web.base_url)
    assert client.post("/subscribe", data={"email": "flow@example.com"}).status_code == 200
    ((address, link),) = mailer.confirm_urls
    assert address == "flow@example.com"
    transport = MemoryTransport()
    clock.advance(timedelta(days=1))
    new_post(w.posts, "first-after")
    w.fp.sync()
    clock.advance(timedelta(days=1))
    w.fp.outbox.fill()
    dispatch(w.fp, transport)
    assert transport.sent == []  # pending: no digest before confirming
    assert client.post(urlsplit(link).path).status_code == 200
    clock.advance(timedelta(days=1))
    new_post(w.posts, "second-after")
    w.fp.sync()
    clock.advance(timedelta(days=1))
    w.fp.outbox.fill()
    dispatch(w.fp, transport)
    assert [e.recipient for e in transport.sent] == ["flow@example.com"]
    digest = email.message_from_bytes(transport.sent[0].data, policy=policy.default)
    unsubscribe = str(digest["List-Unsubscribe"]).split("<")[1].split(">")[0]
    # The archive now lists the sent edition, with neutral links.
    page = client.get("/archive/")
    found = re.search(r'href="/archive/([A-Za-z0-9_-]+)/"', page.text)
    assert found is not None
    key = found.group(1)
    edition = client.get(f"/archive/{key}/")
    assert edition.status_code == 200 and "/u/" not in edition.text
    # Another digest is queued, then the one-click POST cancels it at once.
    clock.advance(timedelta(days=1))
    new_post(w.posts, "third-after")
    w.fp.sync()
    clock.advance(timedelta(days=1))
    w.fp.outbox.fill()
    assert mailer.counts().get("queued") == 1
    r = client.post(urlsplit(unsubscribe).path, content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 200
    assert mailer.counts().get("queued") is None and mailer.counts()["cancelled"] == 1
    dispatch(w.fp, transport)
    assert len(transport.sent) == 1
    w.fp.close()


def test_outbox_mailer_refuses_confirmations_until_the_outbox_can_take_them(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    client = TestClient(create_app(w.fp, OutboxMailer(w.fp)))
    r = client.post("/api/subscribe", json={"email": "x@example.com"})
    assert r.status_code == 503 and "queue_message" in r.json()["error"]
    with pytest.raises(DeliveryUnavailableError):
        OutboxMailer(w.fp).queue_confirmation(w.fp.digests.get("x@example.com"), "u")
    w.fp.close()


def test_inbound_records_a_mailto_unsubscribe(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    w.fp.digests.subscribe({"email": "leave@example.com", "status": "active"})
    config = str(tmp_path / "config.toml")
    message = (
        b"From: Leaver <Leave@example.com>\r\nTo: unsubscribe@blog.example.com\r\n"
        b"Subject: unsubscribe\r\n\r\nPlease.\r\n"
    )
    env = {"FEEDPIPE_SECRET_KEY": SECRET}
    result = CliRunner().invoke(cli, ["--config", config, "inbound"], input=message, env=env)
    assert result.exit_code == 0, result.output
    assert "unsubscribed leave@example.com" in result.output
    assert w.fp.digests.get("leave@example.com").status is SubscriberStatus.UNSUBSCRIBED
    stranger = message.replace(b"Leave@", b"someone@")
    result = CliRunner().invoke(cli, ["--config", config, "inbound"], input=stranger, env=env)
    assert result.exit_code == 0 and "not a subscriber" in result.output
    bad = CliRunner().invoke(cli, ["--config", config, "inbound"], input=b"no headers", env=env)
    assert bad.exit_code == 1 and "no single From address" in bad.output
    w.fp.close()
