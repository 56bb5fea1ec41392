"""Headless Chromium (Debian's) through Playwright: subscribe, confirm, preferences, screenshots."""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
import uvicorn

from feedpipe.clock import FixedClock
from feedpipe.emails.render import EmailRenderer, personalize
from feedpipe.model import SubscriberStatus
from feedpipe.web.mailer import ArchivedEdition
from tests.test_web_helpers import Web, make_web

SITE = "https://blog.example.com"  # feeds are linked at the site URL, served here on 127.0.0.1

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium not installed: apt-get install -y chromium"
)


@pytest.fixture
def served(tmp_path: Path, corpus_dir: Path) -> Iterator[tuple[Web, str]]:
    """The app on 127.0.0.1 (a free port) under uvicorn in a thread."""
    w = make_web(tmp_path, corpus_dir, FixedClock(datetime.now(UTC)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(w.app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield w, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        w.fp.close()


def test_subscribe_confirm_and_preferences_in_chromium(served: tuple[Web, str]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    w, base = served
    digest = _rendered_edition(w)
    w.mailer.archive.append(digest)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(timezone_id="Europe/Berlin", viewport={"width": 720, "height": 900})
        page.goto(f"{base}/subscribe")
        page.get_by_label("Email address").fill("browser@example.com")
        page.get_by_label("Name").fill("Bea <b>Browser</b>")
        page.get_by_label("Rust").check()
        page.screenshot(path=str(ARTIFACTS / "subscribe-form.png"), full_page=True)
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_selector("text=Check your inbox")
        sub = w.subscriber("browser@example.com")  # handled after the reply: waits for it
        assert sub.timezone == "Europe/Berlin"  # filled by the page's script
        assert sub.status is SubscriberStatus.PENDING
        (link,) = w.confirmations("browser@example.com")
        page.goto(base + link)
        page.get_by_role("button", name="Confirm my subscription").click()
        page.wait_for_selector("text=You are subscribed")
        assert w.fp.subscriptions.get("browser@example.com").status is SubscriberStatus.ACTIVE
        href = page.get_by_role("link", name="Choose categories and schedule").get_attribute("href")
        assert href is not None  # an absolute [web] base_url link: open its path here
        page.goto(base + urlsplit(href).path)
        page.get_by_role("radio", name="Weekly").check()
        page.get_by_label("Time of day").fill("07:30")
        page.get_by_role("button", name="Save").click()
        page.wait_for_selector("text=Saved.")
        page.screenshot(path=str(ARTIFACTS / "preferences.png"), full_page=True)
        assert (
            w.fp.subscriptions.get("browser@example.com").schedule.describe().startswith("weekly")
        )
        page.goto(f"{base}/archive/{digest.key}/")
        page.screenshot(path=str(ARTIFACTS / "digest.png"), full_page=True)
        first_title = page.locator("a").filter(has_text="Kafka").first
        assert first_title.count() == 1
        browser.close()
    assert (ARTIFACTS / "subscribe-form.png").stat().st_size > 1000


def test_form_works_without_javascript(served: tuple[Web, str]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    w, base = served
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_context(java_script_enabled=False).new_page()
        page.goto(f"{base}/subscribe")
        page.get_by_label("Email address").fill("nojs@example.com")
        page.get_by_role("button", name="Subscribe").click()
        page.wait_for_selector("text=Check your inbox")
        browser.close()
    assert w.subscriber("nojs@example.com").timezone == "UTC"


def test_a_person_opening_a_feed_url_sees_its_page(served: tuple[Web, str]) -> None:
    """Chromium navigating to a category's feed.xml gets the page; readers get the XML."""
    sync_api = pytest.importorskip("playwright.sync_api")
    w, base = served
    rss = sorted(w.out.glob("category/*/feed.xml"))[0]
    url = f"{base}/{rss.relative_to(w.out).as_posix()}"
    feed = feedparser.parse(rss.read_bytes())
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "feed-page.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 1000})
        response = page.goto(url)
        assert response is not None and response.headers["content-type"].startswith("text/html")
        assert page.locator("h1").inner_text() == feed.feed.title
        assert page.get_by_role("heading", name="Subscribe to this feed").is_visible()
        assert page.get_by_label("Feed address").input_value() == url.replace(base, SITE)
        titles = page.locator("article h3 a").all_inner_texts()
        assert titles == [e.title for e in feed.entries]
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    print(f"\nfeed page screenshot: {shot}")
    assert shot.stat().st_size > 10_000
    with httpx.Client() as client:
        tags = set()
        for headers in (
            {"accept": feedparser.http.ACCEPT_HEADER, "user-agent": feedparser.USER_AGENT},
            {"accept": "*/*", "user-agent": "curl/8.5.0"},
        ):
            r = client.get(url, headers=headers)
            assert r.headers["content-type"].startswith("application/rss+xml")
            assert r.content == rss.read_bytes()
            tags.add(r.headers["etag"])
            again = client.get(url, headers={**headers, "if-none-match": r.headers["etag"]})
            assert again.status_code == 304
        assert len(tags) == 1  # both got the same (gzip) representation
    parsed = feedparser.parse(url)  # feedparser's own HTTP fetch
    assert parsed.status == 200 and not parsed.bozo and parsed.version == "rss20"
    assert feedparser.parse(url, etag=parsed.etag).status == 304


def _rendered_edition(w: Web) -> ArchivedEdition:
    """A real digest of the site's posts, rendered and inlined by the email renderer."""
    content, recipient = w.fp.digests.preview()
    assert content is not None
    edition = EmailRenderer(w.fp.settings).render_edition(content)
    data = personalize(edition, recipient, "<browser.test@blog.example.com>", datetime.now(UTC))
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    return ArchivedEdition(
        content.key, edition.subject, datetime.now(UTC), html, edition.shown_count
    )
