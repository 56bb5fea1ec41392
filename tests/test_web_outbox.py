"""The web over the real outbox and a real SMTP server: subscribe → confirmation mail → follow
the link → digest arrives → archive → one-click unsubscribe → no more mail."""

from __future__ import annotations

import asyncio
import re
import warnings
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from click.testing import CliRunner
from msgspec.structs import replace

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.mail.smtp import SmtpTransport
from feedpipe.model import SubscriberStatus
from feedpipe.web import WebConfig, create_app
from feedpipe.web.outbox import OutboxMailer
from tests.smtp_servers import RecordingHandler, serve
from tests.test_web_helpers import SECRET, Web, make_web

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def new_post(w: Web, slug: str) -> None:
    """A post published a minute from now (after whoever subscribed so far)."""
    date = (w.fp.clock.now() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (w.posts / f"{slug}.md").write_text(
        f"---\ntitle: {slug}\ndate: {date}\ncategories: [Rust]\n---\nBody.\n",
        encoding="utf-8",
    )


def send_due(w: Web, port: int) -> None:
    """A day passes, a post lands, the worker cycle runs: sync, fill, dispatch over SMTP."""
    settings = w.fp.settings
    smtp = replace(settings.email.smtp, **{"host": "127.0.0.1", "port": port})
    email = replace(settings.email, **{"smtp": smtp, "transport": "smtp"})
    w.fp.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    w.fp.sync()
    w.fp.outbox.fill()
    transport = SmtpTransport.from_settings(replace(settings, **{"email": email}))
    asyncio.run(w.fp.outbox.dispatch(transport))


def test_full_flow_over_the_outbox_and_smtp(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    app = create_app(w.fp, OutboxMailer(w.fp), WebConfig())
    client = TestClient(app, base_url=w.fp.settings.web.base_url)
    handler = RecordingHandler()
    with serve(handler) as server:
        assert client.post("/subscribe", data={"email": "flow@example.com"}).status_code == 200
        app.pages.state.guard.intake.join()  # the request is handled after the reply
        new_post(w, "first-after")
        send_due(w, server.port)
        # Only the confirmation went out: a pending subscriber gets no digest.
        (confirmation,) = [r.parse() for r in handler.received]
        assert confirmation["To"].addresses[0].addr_spec == "flow@example.com"
        text = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        link = re.search(r"https?://\S+/c/\S+", text)
        assert link is not None
        assert client.post(urlsplit(link.group(0)).path).status_code == 200
        new_post(w, "second-after")
        send_due(w, server.port)
        assert len(handler.received) == 2
        digest = handler.received[1].parse()
        assert "second-after" in digest.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        unsubscribe = str(digest["List-Unsubscribe"]).split("<")[1].split(">")[0]
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # The archive lists the sent edition, with neutral links.
        page = client.get("/archive/")
        found = re.search(r'href="/archive/([A-Za-z0-9_-]+)/"', page.text)
        assert found is not None
        edition = client.get(f"/archive/{found.group(1)}/")
        assert edition.status_code == 200 and "/u/" not in edition.text
        # RFC 8058 one-click: no cookie, no session; then nothing more is sent.
        fresh = TestClient(client.app, base_url=w.fp.settings.web.base_url)
        r = fresh.post(urlsplit(unsubscribe).path, content=b"List-Unsubscribe=One-Click")
        assert r.status_code == 200
        assert w.fp.subscriptions.get("flow@example.com").status is SubscriberStatus.UNSUBSCRIBED
        new_post(w, "third-after")
        send_due(w, server.port)
        assert len(handler.received) == 2
    w.fp.close()


def test_unsubscribing_cancels_queued_messages_at_once(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    mailer = OutboxMailer(w.fp)
    client = TestClient(create_app(w.fp, mailer, WebConfig()), base_url=w.fp.settings.web.base_url)
    sub = w.fp.subscriptions.add({"email": "q@example.com", "status": "active"})
    clock.advance(timedelta(days=1))
    new_post(w, "queued-post")
    w.fp.sync()
    clock.advance(timedelta(days=1))
    w.fp.outbox.fill()
    assert mailer.counts().get("queued") == 1
    unsubscribe = w.fp.subscriptions.links.recipient(sub).unsubscribe_url
    r = client.post(urlsplit(unsubscribe).path, content=b"List-Unsubscribe=One-Click")
    assert r.status_code == 200
    assert mailer.counts().get("queued") is None and mailer.counts()["cancelled"] == 1
    w.fp.close()


def test_inbound_records_a_mailto_unsubscribe(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    w.fp.subscriptions.add({"email": "leave@example.com", "status": "active"})
    config = str(tmp_path / "config.toml")
    message = (
        b"From: Leaver <Leave@example.com>\r\nTo: unsubscribe@blog.example.com\r\n"
        b"Subject: unsubscribe\r\n\r\nPlease.\r\n"
    )
    env = {"FEEDPIPE_SECRET_KEY": SECRET}
    result = CliRunner().invoke(cli, ["--config", config, "inbound"], input=message, env=env)
    assert result.exit_code == 0, result.output
    assert "unsubscribed leave@example.com" in result.output
    assert w.fp.subscriptions.get("leave@example.com").status is SubscriberStatus.UNSUBSCRIBED
    stranger = message.replace(b"Leave@", b"someone@")
    result = CliRunner().invoke(cli, ["--config", config, "inbound"], input=stranger, env=env)
    assert result.exit_code == 0 and "not a subscriber" in result.output
    bad = CliRunner().invoke(cli, ["--config", config, "inbound"], input=b"no headers", env=env)
    assert bad.exit_code == 0 and "kept for the operator" in bad.output  # listed by --list
    w.fp.close()
