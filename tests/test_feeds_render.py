"""Feed rendering: RSS, Atom, JSON Feed and OPML checked with lxml, feedparser and schemas."""

from __future__ import annotations

import dataclasses
import html
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import feedparser
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

from feedpipe.feeds.formats import render_feed
from feedpipe.feeds.opml import render_opml
from feedpipe.feeds.render import EMPTY_FEED_UPDATED, FeedContext, xslt_stylesheet
from feedpipe.model import FeedSpec, Post, Term, TermKind
from feedpipe.settings import FeedFormat, parse_settings

SCHEMAS = Path(__file__).parent / "schemas"
ATOM = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM}}}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
DC = "{http://purl.org/dc/elements/1.1/}"
TRICKY = '5 < 6 && "x"'
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

PY = Term(TermKind.CATEGORY, "Python & Co", "python & co", "python-co")
WEB = Term(TermKind.CATEGORY, "Web", "web", "web")
LXML = Term(TermKind.TAG, "lxml", "lxml", "lxml")
SITE = FeedSpec(kind="site", slug="", title="My Blog")
CAT = FeedSpec(kind="category", slug="python-co", title="My Blog — Python & Co", term=PY)


def make_ctx(**changes: Any) -> FeedContext:
    ctx = FeedContext(
        site_title="My Blog",
        site_url="https://blog.example.com",
        description="Notes on code",
        language="en",
        author="Ann Author",
        author_email="ann@example.com",
        feeds_base_url="https://feeds.example.com",
        websub_hubs=("https://hub.example.com/",),
        xslt=True,
        generator="feedpipe 0.1.0",
    )
    return dataclasses.replace(ctx, **changes)


def make_post(n: int, **changes: Any) -> Post:
    published = T0 - timedelta(days=n)
    post = Post(
        id=n,
        guid=f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        slug=f"post-{n}",
        url=f"https://blog.example.com/posts/post-{n}/",
        title=f"Post {n}",
        summary=f"Summary {n}",
        content_html=f"<p>Body of <b>post {n}</b></p>",
        published=published,
        updated=published + timedelta(hours=3),
        categories=(PY, WEB),
        tags=(LXML,),
        author="Bob Writer",
        image=f"https://blog.example.com/img/{n}.png",
        image_alt="A picture",
        reading_time=2,
        draft=False,
        content_hash="0" * 64,
        first_seen_at=published,
    )
    return dataclasses.replace(post, **changes)


@pytest.fixture
def ctx() -> FeedContext:
    return make_ctx()


@pytest.fixture
def posts() -> list[Post]:
    first = make_post(0, title=TRICKY, content_html="<p>a ]]> b &amp; c</p>")
    return [first, make_post(1), make_post(2, image=None, author=None, updated=None)]


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


# --- RSS 2.0 -----------------------------------------------------------------------------


def test_rss_channel_fields(posts: list[Post], ctx: FeedContext) -> None:
    channel = xml(render_feed("rss", SITE, posts, ctx)).find("channel")
    assert channel is not None
    assert channel.findtext("title") == "My Blog"
    assert channel.findtext("link") == "https://blog.example.com/"
    assert channel.findtext("description") == "Notes on code"
    assert channel.findtext("language") == "en"
    assert channel.findtext("generator") == "feedpipe 0.1.0"
    assert channel.findtext("managingEditor") == "ann@example.com (Ann Author)"
    assert channel.findtext("lastBuildDate") == "Sun, 01 Mar 2026 15:00:00 GMT"
    links = {link.get("rel"): link.get("href") for link in channel.iter(f"{A}link")}
    assert links == {
        "self": "https://feeds.example.com/feed.xml",
        "hub": "https://hub.example.com/",
    }


def test_rss_items_with_feedparser(posts: list[Post], ctx: FeedContext) -> None:
    parsed = feedparser.parse(render_feed("rss", SITE, posts, ctx))
    assert not parsed.bozo
    assert parsed.feed.link == "https://blog.example.com/"
    assert [e.id for e in parsed.entries] == [p.guid for p in posts]
    assert [e.link for e in parsed.entries] == [p.url for p in posts]
    assert all(not e.guidislink for e in parsed.entries)
    first = parsed.entries[0]
    assert first.title == TRICKY
    assert first.summary == "Summary 0"
    assert first.content[0].value == "<p>a ]]> b &amp; c</p>"
    assert first.author == "Bob Writer"
    assert [t.term for t in first.tags] == ["Python & Co", "Web", "lxml"]
    assert first.tags[0].scheme == "https://blog.example.com/category/python-co/"
    assert first.tags[2].scheme == "https://blog.example.com/tag/lxml/"
    assert [(x.href, x.type) for x in first.enclosures] == [
        ("https://blog.example.com/img/0.png", "image/png")
    ]
    assert first.media_thumbnail[0]["url"] == "https://blog.example.com/img/0.png"
    assert parsed.entries[2].enclosures == []
    assert parsed.entries[2].author == "Ann Author"  # the site author stands in


def test_rss_item_elements(posts: list[Post], ctx: FeedContext) -> None:
    item = xml(render_feed("rss", SITE, posts, ctx)).find("channel/item")
    assert item is not None
    guid = item.find("guid")
    assert guid is not None and guid.get("isPermaLink") == "false"
    assert item.findtext("pubDate") == "Sun, 01 Mar 2026 12:00:00 GMT"
    assert item.findtext(f"{DC}creator") == "Bob Writer"
    assert item.find("author") is None  # RSS <author> would need an email address
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert dict(enclosure.attrib) == {  # type: ignore[misc]  # lxml-stubs: _Attrib is no Mapping
        "url": "https://blog.example.com/img/0.png",
        "type": "image/png",
        "length": "0",
    }
    media = item.find(f"{MEDIA}content")
    assert media is not None and media.get("medium") == "image"
    assert media.findtext(f"{MEDIA}description") == "A picture"
    assert item.find(f"{MEDIA}thumbnail") is not None
    assert item.findtext(f"{CONTENT}encoded") == "<p>a ]]> b &amp; c</p>"


def test_rss_dates_are_utc_rfc822(ctx: FeedContext) -> None:
    plus2 = timezone(timedelta(hours=2))
    post = make_post(0, published=datetime(2026, 5, 3, 1, 30, tzinfo=plus2), updated=None)
    channel = xml(render_feed("rss", SITE, [post], ctx)).find("channel")
    assert channel is not None
    assert channel.findtext("item/pubDate") == "Sat, 02 May 2026 23:30:00 GMT"
    assert channel.findtext("lastBuildDate") == "Sat, 02 May 2026 23:30:00 GMT"
    parsed = feedparser.parse(render_feed("rss", SITE, [post], ctx))
    assert parsed.entries[0].published_parsed[:6] == (2026, 5, 2, 23, 30, 0)


# --- Atom 1.0 ----------------------------------------------------------------------------


def test_atom_feed_fields(posts: list[Post], ctx: FeedContext) -> None:
    feed = xml(render_feed("atom", CAT, posts, ctx))
    assert feed.findtext(f"{A}id") == "https://feeds.example.com/category/python-co/atom.xml"
    assert feed.findtext(f"{A}title") == "My Blog — Python & Co"
    assert feed.findtext(f"{A}updated") == "2026-03-01T15:00:00Z"
    assert feed.findtext(f"{A}author/{A}name") == "Ann Author"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{A}link")}
    assert links == {
        "self": "https://feeds.example.com/category/python-co/atom.xml",
        "alternate": "https://blog.example.com/category/python-co/",
        "hub": "https://hub.example.com/",
    }


def test_atom_entries_with_feedparser(posts: list[Post], ctx: FeedContext) -> None:
    parsed = feedparser.parse(render_feed("atom", SITE, posts, ctx))
    assert not parsed.bozo
    assert parsed.feed.id == "https://feeds.example.com/atom.xml"
    assert parsed.feed.link == "https://blog.example.com/"
    assert [e.id for e in parsed.entries] == [p.guid for p in posts]
    assert [e.link for e in parsed.entries] == [p.url for p in posts]
    first = parsed.entries[0]
    assert first.title == TRICKY
    assert first.summary == "Summary 0"
    assert first.content[0].type == "text/html"
    assert first.content[0].value == "<p>a ]]> b &amp; c</p>"
    assert first.author == "Bob Writer"
    assert first.published == "2026-03-01T12:00:00Z"
    assert first.updated == "2026-03-01T15:00:00Z"
    assert [(x.href, x.type) for x in first.enclosures] == [
        ("https://blog.example.com/img/0.png", "image/png")
    ]
    assert (first.tags[0].term, first.tags[0].label, first.tags[0].scheme) == (
        "Python & Co",
        "Python & Co",
        "https://blog.example.com/category/python-co/",
    )
    assert parsed.entries[2].updated == parsed.entries[2].published  # modified = published


def test_atom_entry_links_keep_rel(posts: list[Post], ctx: FeedContext) -> None:
    entry = xml(render_feed("atom", SITE, posts, ctx)).find(f"{A}entry")
    assert entry is not None
    links = [dict(link.attrib) for link in entry.findall(f"{A}link")]
    assert links == [
        {"href": posts[0].url, "rel": "alternate", "type": "text/html"},
        {"href": posts[0].image, "rel": "enclosure", "type": "image/png"},
    ]


@pytest.mark.parametrize(
    ("image", "media_type"),
    [
        ("https://x.example/a.JPG", "image/jpeg"),
        ("https://x.example/a.webp?w=2#f", "image/webp"),
        ("https://x.example/a.svg", "image/svg+xml"),
        ("https://x.example/image", "application/octet-stream"),
    ],
)
def test_enclosure_type_from_extension(image: str, media_type: str, ctx: FeedContext) -> None:
    entry = xml(render_feed("atom", SITE, [make_post(0, image=image)], ctx)).find(f"{A}entry")
    assert entry is not None
    link = entry.find(f"{A}link[@rel='enclosure']")
    assert link is not None and link.get("type") == media_type


def _atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))


@pytest.mark.parametrize("spec", [SITE, CAT])
@pytest.mark.parametrize("hubs", [(), ("https://hub.example.com/", "https://h2.example/")])
def test_atom_validates_against_rfc4287_schema(
    posts: list[Post], spec: FeedSpec, hubs: tuple[str, ...]
) -> None:
    schema = _atom_schema()
    for selection in (posts, [], [make_post(5, summary="", author=None, image=None)]):
        ctx = make_ctx(websub_hubs=hubs, author=None, description="")
        doc = xml(render_feed("atom", spec, selection, ctx))
        assert schema.validate(doc), schema.error_log
        # RFC 4287 4.1.1: a feed needs an author unless every entry has one.
        assert doc.find(f"{A}author/{A}name") is not None


def test_atom_schema_rejects_broken_feed(posts: list[Post], ctx: FeedContext) -> None:
    data = render_feed("atom", SITE, posts, ctx).replace(b"<updated>", b"<updated>soon ", 1)
    assert not _atom_schema().validate(xml(data))


# --- JSON Feed 1.1 -----------------------------------------------------------------------


def _json_validator() -> Draft202012Validator:
    schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text("utf-8"))
    return Draft202012Validator(schema, format_checker=FormatChecker())


def test_json_feed_fields(posts: list[Post], ctx: FeedContext) -> None:
    data = render_feed("json", CAT, posts, ctx)
    assert data.endswith(b"}\n")
    feed = json.loads(data)
    assert list(feed) == [
        "version",
        "title",
        "home_page_url",
        "feed_url",
        "description",
        "language",
        "authors",
        "hubs",
        "items",
    ]
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["home_page_url"] == "https://blog.example.com/category/python-co/"
    assert feed["feed_url"] == "https://feeds.example.com/category/python-co/feed.json"
    assert feed["hubs"] == [{"type": "WebSub", "url": "https://hub.example.com/"}]
    first = feed["items"][0]
    assert first == {
        "id": posts[0].guid,
        "url": posts[0].url,
        "title": TRICKY,
        "content_html": "<p>a ]]> b &amp; c</p>",
        "summary": "Summary 0",
        "image": "https://blog.example.com/img/0.png",
        "date_published": "2026-03-01T12:00:00Z",
        "date_modified": "2026-03-01T15:00:00Z",
        "authors": [{"name": "Bob Writer"}],
        "tags": ["Python & Co", "Web", "lxml"],
    }
    assert [i["id"] for i in feed["items"]] == [p.guid for p in posts]
    assert "image" not in feed["items"][2] and "authors" not in feed["items"][2]


def test_json_feed_is_utf8_not_ascii_escaped(ctx: FeedContext) -> None:
    data = render_feed("json", CAT, [make_post(0, title="Café ☕")], ctx)
    assert "Café ☕".encode() in data
    assert "My Blog — Python & Co".encode() in data


def test_json_feed_validates_against_schema(posts: list[Post]) -> None:
    validator = _json_validator()
    for ctx in (make_ctx(), make_ctx(author=None, websub_hubs=(), description="")):
        for selection in (posts, [], [make_post(4, content_html="", summary="Only text")]):
            feed = json.loads(render_feed("json", SITE, selection, ctx))
            errors = [e.message for e in validator.iter_errors(feed)]
            assert errors == []


def test_json_schema_rejects_bad_item(posts: list[Post], ctx: FeedContext) -> None:
    feed = json.loads(render_feed("json", SITE, posts, ctx))
    del feed["items"][0]["id"]
    feed["items"][1]["date_published"] = "yesterday"
    assert len(list(_json_validator().iter_errors(feed))) == 2


# --- Shared behaviour --------------------------------------------------------------------


def read_back(fmt: FeedFormat, data: bytes) -> dict[str, Any]:
    """Feed-level title/id and per-entry id/link/title/summary/content as a reader sees them.

    feedparser 6.0 reads RSS and Atom but not JSON Feed, so JSON is read with `json`.
    """
    if fmt == "json":
        feed = json.loads(data)
        items = feed["items"]
        entries = [
            {
                "id": i["id"],
                "link": i["url"],
                "title": i["title"],
                "summary": i.get("summary"),
                "content": i.get("content_html"),
            }
            for i in items
        ]
        return {"title": feed["title"], "id": "", "entries": entries}
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entries = [
        {
            "id": e.id,
            "link": e.link,
            "title": e.title,
            "summary": e.get("summary"),
            "content": e.content[0].value if "content" in e else None,
        }
        for e in parsed.entries
    ]
    feed_id = parsed.feed.get("id", "") if fmt == "atom" else ""
    return {"title": parsed.feed.title, "id": feed_id, "entries": entries}


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_escaping_round_trips_exactly_once(fmt: FeedFormat, ctx: FeedContext) -> None:
    post = make_post(0, title=TRICKY, summary=TRICKY, content_html="<p>]]> &lt;x&gt;</p>")
    spec = dataclasses.replace(SITE, title=f"Blog {TRICKY}")
    feed = read_back(fmt, render_feed(fmt, spec, [post], ctx))
    assert feed["title"] == f"Blog {TRICKY}"
    entry = feed["entries"][0]
    # RSS description is HTML: the plain-text summary arrives HTML-escaped, reads as itself.
    summary = html.unescape(entry["summary"]) if fmt == "rss" else entry["summary"]
    assert (entry["title"], summary) == (TRICKY, TRICKY)
    assert entry["content"] == "<p>]]> &lt;x&gt;</p>"


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_control_characters_and_newlines_are_cleaned(fmt: FeedFormat, ctx: FeedContext) -> None:
    post = make_post(
        0,
        title="Line one\r\nline\x0b two\x00",
        summary="sum\x07mary",
        content_html="<p>ok\x1b</p>",
        image="https://blog.example.com/img/\x01a.png",
    )
    data = render_feed(fmt, SITE, [post], ctx)
    assert not any(chr(c).encode() in data for c in (0, 1, 7, 0x0B, 0x1B))
    entry = read_back(fmt, data)["entries"][0]
    assert (entry["title"], entry["summary"]) == ("Line one line two", "summary")
    assert entry["content"] == "<p>ok</p>"
    assert data.count(b"img/a.png") == {"rss": 3, "atom": 1, "json": 1}[fmt]


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_stylesheet_pi_follows_xml_declaration(
    fmt: FeedFormat, posts: list[Post], ctx: FeedContext
) -> None:
    data = render_feed(fmt, SITE, posts, ctx)
    lines = data.split(b"\n")
    assert lines[0].startswith(b"<?xml version=")
    assert lines[1].startswith(
        b'<?xml-stylesheet type="text/xsl" href="https://feeds.example.com/feed.xsl"?>'
    )
    pi = xml(data).getroottree().getroot().getprevious()
    assert pi is not None and pi.target == "xml-stylesheet"  # type: ignore[attr-defined]
    plain = render_feed(fmt, SITE, posts, make_ctx(xslt=False))
    assert b"xml-stylesheet" not in plain


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_no_hub_link_without_websub(fmt: FeedFormat, posts: list[Post]) -> None:
    data = render_feed(fmt, SITE, posts, make_ctx(websub_hubs=()))
    assert b"hub" not in data


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_rerender_is_byte_identical(fmt: FeedFormat, posts: list[Post], ctx: FeedContext) -> None:
    first = render_feed(fmt, CAT, posts, ctx)
    again = render_feed(fmt, CAT, [dataclasses.replace(p) for p in posts], make_ctx())
    assert first == again


def _ids(fmt: FeedFormat, data: bytes) -> list[str]:
    feed = read_back(fmt, data)
    return [feed["id"], *(e["id"] for e in feed["entries"])]


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_ids_do_not_follow_title_date_or_content(
    fmt: FeedFormat, posts: list[Post], ctx: FeedContext
) -> None:
    before = _ids(fmt, render_feed(fmt, SITE, posts, ctx))
    edited = [
        dataclasses.replace(
            p,
            title=p.title + " (edited)",
            content_html=p.content_html + "<p>more</p>",
            published=p.published + timedelta(minutes=5),
            updated=T0 + timedelta(days=30),
        )
        for p in posts
    ]
    spec = dataclasses.replace(SITE, title="Renamed")
    after = _ids(fmt, render_feed(fmt, spec, edited, ctx))
    assert before == after
    assert before[1:] == [p.guid for p in posts]


def test_feed_dates_follow_newest_modified_not_order(ctx: FeedContext) -> None:
    late_edit = make_post(3, updated=T0 + timedelta(days=2))
    posts = [make_post(0), late_edit]
    rss = xml(render_feed("rss", SITE, posts, ctx))
    atom = xml(render_feed("atom", SITE, posts, ctx))
    assert rss.findtext("channel/lastBuildDate") == "Tue, 03 Mar 2026 12:00:00 GMT"
    assert atom.findtext(f"{A}updated") == "2026-03-03T12:00:00Z"


def test_empty_feeds_use_no_clock(ctx: FeedContext) -> None:
    rss = xml(render_feed("rss", SITE, [], ctx))
    assert rss.find("channel/lastBuildDate") is None
    assert rss.find("channel/item") is None
    atom = xml(render_feed("atom", SITE, [], ctx))
    assert atom.findtext(f"{A}updated") == "1970-01-01T00:00:00Z"
    assert datetime(1970, 1, 1, tzinfo=UTC) == EMPTY_FEED_UPDATED
    assert json.loads(render_feed("json", SITE, [], ctx))["items"] == []


def test_naive_datetimes_are_taken_as_utc(ctx: FeedContext) -> None:
    post = make_post(0, published=datetime(2026, 1, 2, 3, 4, 5), updated=None)
    entry = xml(render_feed("atom", SITE, [post], ctx)).find(f"{A}entry")
    assert entry is not None and entry.findtext(f"{A}published") == "2026-01-02T03:04:05Z"


def test_item_counts_and_order(ctx: FeedContext) -> None:
    posts = [make_post(n) for n in range(7)]
    formats: tuple[FeedFormat, ...] = ("rss", "atom", "json")
    for fmt in formats:
        entries = read_back(fmt, render_feed(fmt, SITE, posts, ctx))["entries"]
        assert [(e["id"], e["link"]) for e in entries] == [(p.guid, p.url) for p in posts]


# --- OPML, stylesheet, context -----------------------------------------------------------


def test_opml_lists_every_feed(ctx: FeedContext) -> None:
    tag = FeedSpec(kind="tag", slug="lxml", title="My Blog — lxml", term=LXML)
    specs = [SITE, CAT, tag]
    data = render_opml(specs, ["atom", "rss"], ctx)
    assert data == render_opml(specs, ["atom", "rss"], make_ctx())
    root = xml(data)
    assert root.get("version") == "2.0"
    assert root.findtext("head/title") == "My Blog — feeds"
    outlines = [dict(o.attrib) for o in root.iterfind("body/outline")]
    assert outlines == [
        {
            "type": "rss",
            "text": spec.title,
            "title": spec.title,
            "xmlUrl": f"https://feeds.example.com/{prefix}atom.xml",
            "htmlUrl": f"https://blog.example.com/{prefix}",
        }
        for spec, prefix in zip(specs, ["", "category/python-co/", "tag/lxml/"], strict=True)
    ]


def test_opml_needs_a_format(ctx: FeedContext) -> None:
    with pytest.raises(ValueError, match="format"):
        render_opml([SITE], [], ctx)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_stylesheet_renders_a_readable_page(
    fmt: FeedFormat, posts: list[Post], ctx: FeedContext
) -> None:
    transform = etree.XSLT(etree.fromstring(xslt_stylesheet()))
    page = transform(xml(render_feed(fmt, CAT, posts, ctx)))
    html = etree.fromstring(str(page), etree.HTMLParser())
    text = " ".join(html.itertext())  # type: ignore[arg-type]  # lxml-stubs: HTML text is str
    assert "My Blog — Python & Co" in text
    assert "Notes on code" in text
    assert "feed reader" in text
    assert (
        f"https://feeds.example.com/category/python-co/{'feed' if fmt == 'rss' else 'atom'}.xml"
        in text
    )
    hrefs = [a.get("href") for a in html.iter("a")]
    assert [p.url for p in posts] == hrefs[1:]
    assert TRICKY in text
    assert ("2026-03-01" if fmt == "atom" else "01 Mar 2026") in text


def test_context_from_settings() -> None:
    settings = parse_settings(
        {
            "site": {"title": "S", "url": "https://s.example/", "author": "A"},
            "feeds": {
                "base_url": "https://cdn.example/feeds",
                "websub_hub": "https://h.example",
                "websub_hubs": ["https://h2.example/", "https://h.example"],
            },
        }
    )
    ctx = FeedContext.from_settings(settings, "feedpipe 9")
    assert ctx == FeedContext(
        site_title="S",
        site_url="https://s.example",
        description="",
        language="en",
        author="A",
        author_email=None,
        feeds_base_url="https://cdn.example/feeds",
        websub_hubs=("https://h.example", "https://h2.example"),
        xslt=True,
        generator="feedpipe 9",
    )
    data = render_feed("rss", SITE, [], ctx)
    assert b'href="https://cdn.example/feeds/feed.xsl"' in data
    assert b'href="https://cdn.example/feeds/feed.xml"' in data
