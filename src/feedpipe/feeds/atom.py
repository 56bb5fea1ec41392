"""Atom 1.0 (RFC 4287) rendering; the feed id is its own self URL, entry ids are post guids."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from lxml import etree

from feedpipe.feeds.render import (
    AT,
    EMPTY_FEED_UPDATED,
    FH,
    FeedContext,
    FeedFormatSpec,
    Fragments,
    Head,
    Paging,
    html_url,
    image_type,
    line,
    newest,
    post_terms,
    rfc3339,
    splice,
    sub,
    term_line,
    term_url,
    xml_bytes,
)
from feedpipe.feeds.xmltext import element, joined, leaf, long_element
from feedpipe.model import FeedSpec, Post, Term

ATOM = "http://www.w3.org/2005/Atom"
_NS = f"{{{ATOM}}}"


def render_atom(
    spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, fragments: Fragments, paging: Paging
) -> list[bytes]:
    """One Atom document (in parts); feed <updated> is the newest post's modification time."""
    head = fragments.head("atom", Head(spec, ctx, paging, newest(posts)), _head_bytes, rfc3339)
    entries = [fragments.get("atom", post, lambda p: _entry_bytes(p, ctx)) for post in posts]
    return splice(head, b"</feed>\n", entries)


def _head_bytes(head: Head) -> bytes:
    feed = _root()
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", head.ctx.language)
    _feed_head(feed, head)
    return xml_bytes(feed, head.ctx)


def _root() -> etree._Element:
    return etree.Element(_NS + "feed", nsmap={None: ATOM})  # type: ignore[dict-item]  # stubs lack None


def _entry_bytes(post: Post, ctx: FeedContext) -> bytes:
    """One <entry>, as lxml would serialise it inside this document (feeds/xmltext.py)."""
    image = post.image
    parts: list[str | bytes] = [
        leaf("id", post.guid),
        leaf("title", line(post.title), type="text"),
        leaf("link", href=post.url, rel="alternate", type="text/html"),
        leaf("link", href=image, rel="enclosure", type=image_type(image)) if image else "",
        leaf("published", rfc3339(post.published)),
        leaf("updated", rfc3339(post.modified)),
        element("author", leaf("name", line(post.author))) if post.author else "",
        _summary(post),
        long_element("content", post.content_html, {"type": "html"}),
        *(_category(term, ctx) for term in post_terms(post)),
    ]
    return joined("entry", parts)


def _summary(post: Post) -> str:
    if post.summary_html:
        return leaf("summary", post.summary_html, type="html")
    if post.summary.strip():
        return leaf("summary", line(post.summary), type="text")
    return ""


@functools.lru_cache(maxsize=4096)
def _category(term: Term, ctx: FeedContext) -> str:
    name = term_line(term.name)
    return leaf("category", term=name, scheme=term_url(term, ctx), label=name)


def _feed_head(feed: etree._Element, head: Head) -> None:
    spec, ctx, paging = head.spec, head.ctx, head.paging
    own = ATOM_FORMAT.url(spec, ctx)
    sub(feed, _NS + "id", own)  # archive documents share the subscription document's id
    sub(feed, _NS + "title", line(spec.title), type="text")
    if ctx.description.strip():
        sub(feed, _NS + "subtitle", line(ctx.description), type="text")
    self_url = ATOM_FORMAT.url(spec, ctx, paging.page)
    sub(feed, _NS + "link", href=self_url, rel="self", type=ATOM_FORMAT.media_type)
    _archive_links(feed, spec, ctx, paging)
    sub(feed, _NS + "link", href=html_url(spec, ctx), rel="alternate", type="text/html")
    for hub in ctx.websub_hubs:
        sub(feed, _NS + "link", href=hub, rel="hub")
    sub(feed, _NS + "updated", rfc3339(head.built or EMPTY_FEED_UPDATED))
    _author(feed, ctx.author or ctx.site_title, ctx.author_email, f"{ctx.site_url}/")
    sub(feed, _NS + "generator", line(ctx.generator))
    if ctx.icon:
        sub(feed, _NS + "icon", ctx.icon)
    if ctx.logo:
        sub(feed, _NS + "logo", ctx.logo)
    for guid, when in paging.deleted:  # RFC 6721: readers drop entries that were retracted
        tomb = etree.SubElement(feed, f"{{{AT}}}deleted-entry", nsmap={"at": AT})
        tomb.set("ref", guid)
        tomb.set("when", rfc3339(when))


def _archive_links(feed: etree._Element, spec: FeedSpec, ctx: FeedContext, paging: Paging) -> None:
    """RFC 5005: fh:archive, current, prev-archive and next-archive, as they apply."""
    kind = ATOM_FORMAT.media_type
    if paging.page:
        etree.SubElement(feed, f"{{{FH}}}archive", nsmap={"fh": FH})
        sub(feed, _NS + "link", href=ATOM_FORMAT.url(spec, ctx), rel="current", type=kind)
    if paging.prev:
        href = ATOM_FORMAT.url(spec, ctx, paging.prev)
        sub(feed, _NS + "link", href=href, rel="prev-archive", type=kind)
    if paging.next:
        href = ATOM_FORMAT.url(spec, ctx, paging.next)
        sub(feed, _NS + "link", href=href, rel="next-archive", type=kind)


def _author(parent: etree._Element, name: str, email: str | None, uri: str | None) -> None:
    author = sub(parent, _NS + "author")
    sub(author, _NS + "name", line(name))
    if email:
        sub(author, _NS + "email", line(email))
    if uri:
        sub(author, _NS + "uri", uri)


ATOM_FORMAT = FeedFormatSpec("atom", "atom.xml", "application/atom+xml", render_atom)
