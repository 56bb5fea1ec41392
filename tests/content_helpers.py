"""Helpers for the content-rule tests: source fields → Entry → Post, and every output of it."""

from __future__ import annotations

import dataclasses
import email
import re
from collections import Counter
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from lxml import etree
from lxml import html as lxml_html

from feedpipe.digests.plan import edition_content
from feedpipe.emails.mime import MimeTemplate
from feedpipe.emails.render import EmailRenderer, personalize
from feedpipe.feeds.formats import render_feed
from feedpipe.feeds.opml import render_opml
from feedpipe.feeds.render import FeedContext
from feedpipe.model import Entry, FeedSpec, Post, Term, TermKind
from feedpipe.model.terms import base_slug, term_key
from feedpipe.source.fields import RawPost, SummaryFormat, build_entry
from feedpipe.web.outbox import public_html
from tests.test_email_support import recipient, settings

if TYPE_CHECKING:
    from feedpipe.service import Feedpipe

SITE_URL = "https://blog.example.com"
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
SITE = FeedSpec(kind="site", slug="", title="My Blog")
CTX = FeedContext(
    site_title="My Blog",
    site_url=SITE_URL,
    description="Notes",
    language="en",
    author="Site Author",
    author_email="ann@example.com",
    feeds_base_url="https://feeds.example.com",
    websub_hubs=(),
    xslt=False,
    generator="feedpipe test",
)
BODY = "A body paragraph with [a link](/x) and *emphasis*.\n\nSecond paragraph.\n"


@dataclasses.dataclass(frozen=True, slots=True)
class Fields:
    """The plain-text fields of one generated post."""

    title: str
    summary: str
    author: str
    category: str
    tag: str
    image_alt: str


def entry_of(fields: Fields, summary_format: SummaryFormat = "text") -> Entry:
    """The Entry a Markdown/JSON source makes of these front-matter fields."""
    meta: dict[str, Any] = {
        "title": fields.title,
        "date": "2026-11-01T10:00:00Z",
        "summary": fields.summary,
        "author": fields.author,
        "categories": [fields.category],
        "tags": [fields.tag],
        "image": "/img/a.png",
        "image_alt": fields.image_alt,
        "slug": "post",
    }
    raw = RawPost("p.md", "p.md", meta, body=BODY, summary_format=summary_format)
    return build_entry(raw, SITE_URL)


def _term(kind: TermKind, name: str) -> Term:
    return Term(kind, name, term_key(name), base_slug(name))


def post_of(entry: Entry) -> Post:
    """The stored form of an entry (what the store would hand the feeds and digests)."""
    return Post(
        id=1,
        guid="urn:uuid:00000000-0000-4000-8000-000000000001",
        slug=entry.slug,
        url=f"{SITE_URL}/posts/{entry.slug}/",
        title=entry.title,
        summary=entry.summary,
        summary_html=entry.summary_html,
        content_html=entry.content_html,
        published=entry.published,
        updated=entry.updated,
        categories=tuple(_term(TermKind.CATEGORY, n) for n in entry.categories),
        tags=tuple(_term(TermKind.TAG, n) for n in entry.tags),
        author=entry.author,
        image=entry.image,
        image_alt=entry.image_alt,
        reading_time=None,
        draft=False,
        content_hash=entry.content_hash,
        first_seen_at=entry.published,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Outputs:
    """Every output of one post: three feeds, OPML, a digest message and its archive page."""

    rss: bytes
    atom: bytes
    json: bytes
    opml: bytes
    message: EmailMessage
    archive_html: str


def outputs(post: Post) -> Outputs:
    """Render `post` into every output feedpipe makes of it."""
    feeds = {fmt: render_feed(fmt, SITE, [post], CTX) for fmt in ("rss", "atom", "json")}
    term = post.categories[0]
    spec = FeedSpec("category", term.slug, f"My Blog — {term.name}", term)
    opml = render_opml([SITE, spec], ["rss"], CTX)
    config = settings()
    renderer = EmailRenderer(config)
    content = edition_content(((term.key, (post.id,)),), {post.id: post})
    edition = renderer.render_edition(content)
    data = personalize(edition, recipient(), "<1.a@blog.example.com>", NOW)
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage) and not message.defects
    service = cast("Feedpipe", SimpleNamespace(settings=config))
    archive = public_html(service, MimeTemplate.load(edition.template.dump()), NOW)
    return Outputs(feeds["rss"], feeds["atom"], feeds["json"], opml, message, archive)


def text_parts(message: EmailMessage) -> tuple[str, str]:
    """(text part, HTML part) of a digest, line ends as LF."""
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    return str(text.get_content()).replace("\r\n", "\n"), str(html.get_content())


def unwrapped(text: str) -> str:
    """A text part with its 72-column wrapping (and indents) undone: runs of space → one."""
    return re.sub(r"[ \n]+", " ", text)


def html_elements(fragment: str) -> Counter[str]:
    """Elements and attributes in an HTML document or fragment (tag and tag@attr counts)."""
    root = lxml_html.fromstring(f"<div>{fragment}</div>") if "<html" not in fragment else None
    if root is None:
        root = lxml_html.document_fromstring(fragment)
    found: Counter[str] = Counter()
    for element in root.iter():
        if isinstance(element.tag, str):
            found[element.tag] += 1
            found.update(f"{element.tag}@{name!s}" for name in element.attrib)
    return found


def html_text(fragment: str) -> str:
    """The text an HTML fragment shows."""
    root = lxml_html.fromstring(f"<div>{fragment}</div>")
    return "".join(str(t) for t in root.itertext())


def xml(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def xpath_text(root: etree._Element, path: str, ns: dict[str, str] | None = None) -> list[str]:
    """Text of every element an XPath selects ("" for an empty one)."""
    found = root.xpath(path, namespaces=ns or {})
    assert isinstance(found, list)
    return [e.text or "" for e in found if isinstance(e, etree._Element)]


def html_strings(page: str, path: str) -> list[str]:
    """String results (text nodes, attribute values) of an XPath over an HTML document."""
    found = lxml_html.document_fromstring(page).xpath(path)
    assert isinstance(found, list)
    return [str(item) for item in found]
