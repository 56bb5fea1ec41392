"""The public archive over the real outbox: one issue per send day however many category mixes
readers have, "view in your browser" per edition, no recipient address, a working unsubscribe."""

from __future__ import annotations

import asyncio
import email
import re
import warnings
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from lxml import html as lxml_html

from feedpipe.clock import FixedClock
from feedpipe.mail.memory import MemoryTransport
from feedpipe.model import SentEdition
from feedpipe.outbox.archive import day_bounds, issues, parse_day
from feedpipe.web import WebConfig, create_app
from feedpipe.web.outbox import OutboxMailer
from tests.test_web_helpers import Web, make_web

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

READERS = {
    "all@example.com": "",
    "rust@example.com": "Rust",
    "ds@example.com": "Distributed Systems",
}


def new_post(w: Web, slug: str, category: str) -> None:
    when = w.fp.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    (w.posts / f"{slug}.md").write_text(
        f"---\ntitle: Title {slug}\ndate: {when}\ncategories: [{category}]\n---\nBody.\n",
        encoding="utf-8",
    )


def send_day(w: Web, transport: MemoryTransport, *posts: tuple[str, str]) -> None:
    """Posts land, a day passes, the worker cycle runs: sync, fill, dispatch."""
    w.fp.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    for slug, category in posts:
        new_post(w, slug, category)
    w.fp.sync()
    w.fp.clock.advance(timedelta(days=1))  # type: ignore[attr-defined]
    w.fp.outbox.fill()
    asyncio.run(w.fp.outbox.dispatch(transport))


def nodes(tree: Any, path: str) -> list[Any]:
    """An XPath over an element, or over an HTML document given as text."""
    found = (lxml_html.fromstring(tree) if isinstance(tree, str) else tree).xpath(path)
    assert isinstance(found, list)
    return found


def html_of(data: bytes) -> str:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_one_issue_per_send_day_and_view_in_browser_per_edition(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    client = TestClient(
        create_app(w.fp, OutboxMailer(w.fp), WebConfig()), base_url=w.fp.settings.web.base_url
    )
    for address, categories in READERS.items():
        w.fp.subscriptions.add({"email": address, "status": "active", "categories": categories})
    clock.advance(timedelta(hours=1))
    transport = MemoryTransport()
    send_day(w, transport, ("rusty", "Rust"), ("spread", "Distributed Systems"))
    assert len(transport.sent) == 3  # three readers, three category mixes: three editions

    index = client.get("/archive/")
    entries = nodes(index.text, "//ol[@class='archive']/li")
    assert len(entries) == 1  # …and one issue
    (href,) = nodes(entries[0], "a/@href")
    day = clock.now().date().isoformat()  # [digest] timezone is UTC here
    assert href == f"/archive/{day}/"
    assert nodes(entries[0], "time/@datetime") == [day]
    assert "2 posts" in entries[0].text_content()

    issue = client.get(href)
    assert issue.status_code == 200
    assert "Title rusty" in issue.text and "Title spread" in issue.text
    for address in (*READERS, "archive@"):
        assert address not in issue.text
    page: Any = lxml_html.fromstring(issue.text)
    assert "View in your browser" not in page.text_content()
    (unsubscribe,) = nodes(page, "//a[normalize-space()='Unsubscribe']/@href")
    assert urlsplit(unsubscribe).path == "/unsubscribe"
    helped = client.get("/unsubscribe")
    assert helped.status_code == 200 and "own Unsubscribe" in helped.text
    assert "mailto:unsubscribe@" in helped.text or "mailto:" not in helped.text

    for envelope in transport.sent:
        html = html_of(envelope.data)
        (link,) = set(nodes(html, "//a[normalize-space()='View in your browser']/@href"))
        path = urlsplit(link).path
        assert re.fullmatch(r"/archive/[0-9a-f]{64}/", path)
        web = client.get(path)
        assert web.status_code == 200 and envelope.recipient not in web.text
        wanted = {"rust@example.com": ("rusty", "spread"), "ds@example.com": ("spread", "rusty")}
        if envelope.recipient in wanted:
            shown, hidden = wanted[envelope.recipient]
            assert f"Title {shown}" in web.text and f"Title {hidden}" not in web.text

    send_day(w, transport, ("later", "Rust"))
    entries = nodes(client.get("/archive/").text, "//ol[@class='archive']/li")
    assert [nodes(e, "a/@href")[0] for e in entries] == [
        f"/archive/{clock.now().date().isoformat()}/",
        href,
    ]
    assert client.get("/archive/1999-01-01/").status_code == 404
    assert client.get("/archive/2026-13-45/").status_code == 404
    w.fp.close()


def test_issues_group_editions_by_the_sites_local_send_day() -> None:
    def sent(key: str, planned: datetime, ids: tuple[int, ...]) -> SentEdition:
        return SentEdition(key, "s", len(ids), b"", planned + timedelta(minutes=3), ids, planned)

    zone = ZoneInfo("Europe/Berlin")
    late = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 on the 29th in Berlin (DST day)
    editions = [
        sent("a", datetime(2026, 3, 28, 7, tzinfo=UTC), (1, 2)),
        sent("b", datetime(2026, 3, 28, 9, tzinfo=UTC), (2, 3)),
        sent("c", late, (4,)),
    ]
    found = issues(editions, zone)
    assert [(i.key, i.post_ids, i.edition_keys) for i in found] == [
        ("2026-03-29", (4,), ("c",)),
        ("2026-03-28", (1, 2, 3), ("a", "b")),
    ]
    start, end = day_bounds(date(2026, 3, 29), zone)
    assert end - start == timedelta(hours=23) and start <= late < end
    assert parse_day("2026-03-29") == date(2026, 3, 29)
    assert parse_day("2026-02-30") is None and parse_day("a" * 64) is None


def test_unsubscribe_page_mails_a_subscriber_their_own_links(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    app = create_app(w.fp, OutboxMailer(w.fp), WebConfig())
    client = TestClient(app, base_url=w.fp.settings.web.base_url)
    w.fp.subscriptions.add({"email": "keep@example.com", "status": "active"})
    w.fp.subscriptions.add({"email": "waiting@example.com"})  # pending: gets no links
    form = client.get("/unsubscribe")
    assert form.status_code == 200 and 'action="/unsubscribe"' in form.text
    answers = {
        address: client.post("/unsubscribe", data={"email": address})
        for address in ("keep@example.com", "nobody@example.com", "waiting@example.com")
    }
    assert {r.status_code for r in answers.values()} == {200}
    assert len({r.text for r in answers.values()}) == 1  # nothing tells who is subscribed
    bad = client.post("/unsubscribe", data={"email": "not an address"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text

    app.pages.state.guard.intake.join()  # the links are mailed after the reply
    transport = MemoryTransport()
    asyncio.run(w.fp.outbox.dispatch(transport))
    (envelope,) = transport.sent
    assert envelope.recipient == "keep@example.com"
    message = email.message_from_bytes(envelope.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"https?://\S+/u/\S+", str(text.get_content()))
    assert found is not None
    done = client.post(urlsplit(found.group(0)).path)
    assert done.status_code == 200
    assert w.fp.subscriptions.get("keep@example.com").status.value == "unsubscribed"
    w.fp.close()
