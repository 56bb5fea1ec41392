"""The human page of every feed: written beside it, served to browsers, never to feed readers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import html

from feedpipe.web.feedfiles import wants_page
from tests.helpers import post
from tests.test_build import service, snapshot
from tests.test_web_helpers import Web, web

__all__ = ["web"]

BROWSER = {  # what Chromium sends when a person opens the URL
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8",
    "sec-fetch-dest": "document",
    "sec-fetch-mode": "navigate",
    "sec-fetch-site": "none",
}
READERS = {  # feed readers and tools fetching the same URL
    "feedparser": {"accept": feedparser.http.ACCEPT_HEADER, "user-agent": feedparser.USER_AGENT},
    "curl": {"accept": "*/*", "user-agent": "curl/8.5.0"},
    "reader": {"accept": "application/atom+xml,application/rss+xml,*/*;q=0.1"},
    "fetch()": {"accept": "*/*", "sec-fetch-dest": "empty", "sec-fetch-mode": "cors"},
    "old browser": {},
}


def _text(element: Any) -> str:
    return str(element.xpath("string()"))


def test_every_feed_folder_gets_a_page_listing_its_posts(tmp_path: Path, corpus_dir: Path) -> None:
    with service(tmp_path, corpus_dir / "blog-002") as fp:
        fp.build()
        first = snapshot(tmp_path / "out")
        assert fp.build(full=True).written == ()
    assert snapshot(tmp_path / "out") == first
    feeds = [k for k in first if k.endswith("feed.xml") and "history/" not in k]
    assert len(feeds) > 10
    for rss in feeds:
        folder = rss[: -len("feed.xml")]
        page = html.fromstring(first[folder + "index.html"])
        parsed = feedparser.parse(first[rss])
        assert page.findtext(".//h1") == parsed.feed.title
        titles = [_text(a) for a in page.cssselect("article h3 a")]
        assert titles == [e.title for e in parsed.entries]
        hrefs = [a.get("href") for a in page.cssselect("article h3 a")]
        assert hrefs == [e.link for e in parsed.entries]
        alternates = {
            ln.get("type"): ln.get("href") for ln in page.cssselect("link[rel=alternate]")
        }
        own = next(ln.href for ln in parsed.feed.links if ln.rel == "self")
        assert alternates["application/rss+xml"] == own
        assert set(alternates) == {
            "application/rss+xml",
            "application/atom+xml",
            "application/feed+json",
        }
        assert page.cssselect("input#feed-url")[0].get("value") == alternates["application/rss+xml"]
        readers = [_text(a) for a in page.cssselect("ul.readers a")]
        assert "Feedly" in readers and "Inoreader" in readers
        assert any(a.get("href", "").endswith("/feeds.opml") for a in page.iter("a"))


def test_text_is_escaped_and_a_foreign_page_is_never_replaced(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", title="<script>alert(1)</script> & more", categories="[Rust]")
    foreign = tmp_path / "out" / "category" / "rust" / "index.html"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"<html>the blog's own category page</html>")
    with service(tmp_path, posts) as fp:
        fp.build()
    assert foreign.read_bytes() == b"<html>the blog's own category page</html>"
    site = (tmp_path / "out" / "index.html").read_bytes()
    assert b"<script>" not in site and b"&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in site
    assert _text(html.fromstring(site).cssselect("article h3 a")[0]).startswith("<script>")


def test_a_deleted_page_comes_back_on_the_next_build(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories="[Rust]")
    with service(tmp_path, posts) as fp:
        fp.build()
        page = tmp_path / "out" / "category" / "rust" / "index.html"
        data = page.read_bytes()
        page.unlink()
        assert fp.build().written == ("category/rust/index.html",)
    assert page.read_bytes() == data


def test_pages_can_be_turned_off_and_are_then_removed(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories="[Rust]")
    with service(tmp_path, posts) as fp:
        fp.build()
    assert (tmp_path / "out" / "category" / "rust" / "index.html").is_file()
    with service(tmp_path, posts, pages="false") as fp:
        report = fp.build()
    assert "category/rust/index.html" in report.removed
    assert not (tmp_path / "out" / "index.html").exists()


@pytest.mark.parametrize("name", sorted(READERS))
def test_readers_get_the_feed_bytes_and_etag_browsers_get_the_page(web: Web, name: str) -> None:
    rss = sorted(p for p in web.out.glob("category/*/feed.xml"))[0]
    url = "/" + rss.relative_to(web.out).as_posix()
    person = web.client.get(url, headers=BROWSER)
    assert person.status_code == 200 and person.headers["content-type"].startswith("text/html")
    assert person.content == (rss.parent / "index.html").read_bytes()
    assert "content-security-policy" in person.headers
    headers = {**READERS[name], "accept-encoding": "identity"}
    feed = web.client.get(url, headers=headers)
    assert feed.headers["content-type"].startswith("application/rss+xml")
    assert feed.content == rss.read_bytes()
    assert feed.headers["etag"] != person.headers["etag"]
    assert feed.headers["vary"] == person.headers["vary"]
    assert "Sec-Fetch-Dest" in feed.headers["vary"] and "Accept" in feed.headers["vary"]
    again = web.client.get(url, headers={**headers, "if-none-match": feed.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == feed.headers["etag"]
    raw = web.client.get(url + "?raw", headers=BROWSER)  # "view the XML" from the page
    assert raw.content == rss.read_bytes()


def test_folder_url_serves_the_page(web: Web) -> None:
    folder = sorted(p for p in web.out.glob("category/*/") if p.is_dir())[0]
    r = web.client.get("/" + folder.relative_to(web.out).as_posix() + "/")
    assert r.status_code == 200 and r.content == (folder / "index.html").read_bytes()


@pytest.mark.parametrize(
    ("headers", "page"),
    [
        (
            {
                b"accept": b"text/html,*/*",
                b"sec-fetch-dest": b"document",
                b"sec-fetch-mode": b"navigate",
            },
            True,
        ),
        (
            {b"accept": b"*/*", b"sec-fetch-dest": b"document", b"sec-fetch-mode": b"navigate"},
            False,
        ),
        (
            {b"accept": b"text/html", b"sec-fetch-dest": b"iframe", b"sec-fetch-mode": b"navigate"},
            False,
        ),
        ({b"accept": b"text/html,application/xhtml+xml"}, True),
        ({b"accept": b"application/rss+xml, text/html;q=0.5"}, False),
        ({}, False),
    ],
)
def test_navigation_is_told_from_a_fetch(headers: dict[bytes, bytes], page: bool) -> None:
    assert wants_page(headers) is page
