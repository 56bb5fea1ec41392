"""Headless Chromium (Debian's) through Playwright: subscribe, confirm, preferences, screenshots."""

from __future__ import annotations

import email
import socket
import struct
import threading
import time
import zlib
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
from feedpipe.settings import parse_settings
from feedpipe.web.mailer import ArchivedEdition
from tests.test_email_support import edition, make_post, recipient
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


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain-colour PNG (no image library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


LONG_WORD = "Supercalifragilisticexpialidocious" * 2 + "Antidisestablishment"[:8]  # 76 chars
LONG_URL = "https://example.com/" + "a-very-long-path-segment-without-spaces" * 3


def _digest_with_images(language: str) -> str:
    """A digest's HTML part: thumbnails, a logo, a 76-character word and a long URL."""
    posts = [
        make_post(1, f"{LONG_WORD} in a title", ("Rust",), image="/img/1.png", image_alt="Red"),
        make_post(2, "A normal title about shards", ("Rust",), summary=f"Read {LONG_URL} now."),
        make_post(3, "No image here", ("Databases",), summary=f"{LONG_WORD} " * 3),
        make_post(4, "Blue", ("Databases",), image="/img/4.png", image_alt="Blue square"),
    ]
    settings = parse_settings(
        {
            "site": {"title": "Blog 002", "url": SITE, "logo": "logo.png", "language": language},
            "email": {"from_address": "digest@blog.example.com"},
        }
    )
    rendered = EmailRenderer(settings).render_edition(edition(posts))
    data = personalize(rendered, recipient(), "<b.1@blog.example.com>", datetime.now(UTC))
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


LAYOUT_PROBE = """() => {
  const width = window.innerWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1)
    .map(e => e.tagName + '.' + e.className);
  const clipped = [...document.querySelectorAll('a.title')].filter(a => {
    const cell = a.closest('td');
    const box = a.getBoundingClientRect(), outer = cell.getBoundingClientRect();
    return box.left < outer.left - 1 || box.right > outer.right + 1
      || cell.scrollWidth > cell.clientWidth + 1;
  }).map(a => a.textContent);
  const thumbs = [...document.querySelectorAll('img.thumb')].map(i => {
    const r = i.getBoundingClientRect();
    return [Math.round(r.width), Math.round(r.height), i.complete && i.naturalWidth > 0];
  });
  return {scroll: document.scrollingElement.scrollWidth, width, wide, clipped, thumbs,
          dir: document.documentElement.dir};
}"""


@pytest.mark.parametrize(("language", "width"), [("en", 390), ("en", 1200), ("ar", 390)])
def test_digest_with_images_fits_phone_and_desktop(
    language: str, width: int, tmp_path: Path
) -> None:
    """Long words and URLs wrap; thumbnails keep their box; nothing is wider than the viewport."""
    sync_api = pytest.importorskip("playwright.sync_api")
    html = _digest_with_images(language)
    images = {
        "/feed-logo.png": _png(160, 40, (24, 24, 27)),
        "/img/1.png": _png(240, 180, (220, 38, 38)),
        "/img/4.png": _png(240, 180, (37, 99, 235)),
    }
    shot = tmp_path / f"digest-{language}-{width}.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.route(
            f"{SITE}/**",
            lambda route: route.fulfill(
                body=images[urlsplit(route.request.url).path], content_type="image/png"
            ),
        )
        page.set_content(html, wait_until="load")
        found = page.evaluate(LAYOUT_PROBE)
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    print(f"\ndigest screenshot ({language}, {width} px): {shot}")
    assert found["scroll"] <= found["width"], found
    assert found["wide"] == [] and found["clipped"] == [], found
    side = (88, 66) if width < 620 else (120, 90)  # the phone rule shrinks thumbnails
    assert found["thumbs"] == [[*side, True], [*side, True]], found
    assert found["dir"] == ("rtl" if language == "ar" else "ltr")
    assert shot.stat().st_size > 5_000
