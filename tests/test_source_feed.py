"""FeedFileSource: RSS, Atom and JSON Feed files as sources."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpipe.errors import SourceError
from feedpipe.model import Document, ParsedDocument
from feedpipe.source.feedfile import FeedFileSource

SITE = "https://blog.example.com"
FEEDS = Path(__file__).parent / "fixtures" / "posts" / "feeds"


def parse(name: str) -> ParsedDocument:
    source = FeedFileSource(FEEDS / name, SITE)
    (doc,) = source.scan()
    assert doc.key == name
    return source.parse(doc, source.read(doc))


def test_scan_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"feed\.xml"):
        FeedFileSource(tmp_path / "feed.xml", SITE).scan()


def test_picklable() -> None:
    source = FeedFileSource(FEEDS / "rss.xml", SITE)
    assert pickle.loads(pickle.dumps(source)) == source


def test_rss() -> None:
    parsed = parse("rss.xml")
    first, media = parsed.entries
    assert first.key == "rss.xml#caching-and-queues"
    assert first.title == "Caching & Queues"
    assert first.url == "https://old.example.com/posts/caching-and-queues/"
    assert first.published == datetime(2026, 2, 3, 9, 30, tzinfo=UTC)
    assert first.updated is None
    assert first.summary == "Why caches and queues go together."
    assert first.content_html == (
        '<p>Read <a href="https://blog.example.com/posts/queues/">the queues post</a>.</p>'
        '<img src="https://blog.example.com/img/cache.png">'
    )
    assert first.categories == ("Architecture", "Caching")
    assert first.image == "https://old.example.com/img/cover.jpg"
    assert media.key == "rss.xml#media-post"
    assert media.image == "https://cdn.example.com/media.png"
    assert media.content_html == "Plain description."
    (skip,) = parsed.skips
    assert skip.key == "rss.xml#item 1"
    assert skip.reason == "rss.xml item 1: date: missing (every post needs a publication date)"


def test_atom() -> None:
    parsed = parse("atom.xml")
    assert parsed.skips == ()
    first, second = parsed.entries
    assert first.key == "atom.xml#first-light"
    assert first.title == "5 < 6 && more"
    assert first.published == datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    assert first.updated == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert first.author == "Ada Writer"
    assert first.categories == ("Astronomy",)
    assert first.summary == "First light through the new telescope."
    assert first.content_html == (
        '<p>See <a>this</a> and <a href="https://blog.example.com/notes/">notes</a>.</p>'
    )
    assert second.published == datetime(2026, 2, 1, tzinfo=UTC)
    assert second.updated is None


def test_json_feed() -> None:
    parsed = parse("feed.json")
    hello, text = parsed.entries
    assert hello.key == "feed.json#hello-json"
    assert hello.published == datetime(2026, 4, 1, 12, tzinfo=UTC)
    assert hello.updated == datetime(2026, 4, 2, 8, tzinfo=UTC)
    assert hello.content_html == '<p>Hi <a href="https://blog.example.com/about/">me</a></p>'
    assert hello.categories == ("Intro", "Meta")
    assert hello.image == "https://blog.example.com/img/hello.png"
    assert hello.author == "Jay Son"
    assert text.key == "feed.json#text-only"
    assert text.content_html == "<p>Line one &lt;b&gt;not bold&lt;/b&gt;</p><p>Line two</p>"
    assert text.url is None
    assert {s.key: s.reason for s in parsed.skips} == {
        "feed.json#item 2": "feed.json item 2: date: cannot parse 'someday' as a date",
        "feed.json#item 3": "feed.json item 3: expected an object, got 'not an object'",
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html><body>nope</body></html>", "f.xml: not an RSS, Atom or JSON feed"),
        (b"hello", "f.xml: not an RSS, Atom or JSON feed"),
        (b'{"version": "1"}', "f.xml: JSON without a JSON Feed version URL ('1')"),
        (b"{broken", "f.xml: invalid JSON Feed: Expecting property name"),
        (
            b'{"version": "https://jsonfeed.org/version/1.1", "items": 3}',
            "f.xml: JSON Feed 'items'",
        ),
    ],
)
def test_not_a_feed_is_one_skip(data: bytes, reason: str) -> None:
    parsed = FeedFileSource(FEEDS / "f.xml", SITE).parse(Document("f.xml", 1, 1), data)
    assert parsed.entries == ()
    (skip,) = parsed.skips
    assert skip.key == "f.xml"
    assert skip.reason.startswith(reason)


def test_empty_valid_feed_has_no_entries() -> None:
    data = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
    parsed = FeedFileSource(FEEDS / "f.xml", SITE).parse(Document("f.xml", 1, 1), data)
    assert parsed.entries == () and parsed.skips == ()


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda t: ("<rss>" + t).encode()))
)
def test_parse_never_raises(data: bytes) -> None:
    parsed = FeedFileSource(FEEDS / "f.xml", SITE).parse(Document("f.xml", 0, 0), data)
    assert all(s.reason.startswith("f.xml") for s in parsed.skips)
