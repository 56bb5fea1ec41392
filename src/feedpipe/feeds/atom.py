"""Atom 1.0 (RFC 4287) rendering; the feed id is its own self URL, entry ids are post guids."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from feedpipe.feeds.render import (
    AT,
    EMPTY_FEED_UPDATED,
    FH,
    FeedContext,
    FeedFormatSpec,
    Fragments,
    Paging,
    element_bytes,
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
from feedpipe.model import FeedSpec, Post

ATOM = "http://www.w3.org/2005/Atom"
_NS = f"{{{ATOM}}}"


def render_atom(
    spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, fragments: Fragments, paging: Paging
) -> bytes:
    """One Atom document; feed <updated> is the newest post's modification time."""
    feed = _root()
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", ctx.language)
    _feed_head(feed, spec, posts, ctx, paging)
    entries = [fragments.get("atom", post, lambda p: _entry_bytes(p, ctx)) for post in posts]
    return splice(xml_bytes(feed, ctx), b"</feed>\n", entries)


def _root() -> etree._Element:
    return etree.Element(_NS + "feed", nsmap={None: ATOM})  # type: ignore[dict-item]  # stubs lack None


def _entry_bytes(post: Post, ctx: FeedContext) -> bytes:
    wrapper = _root()
    _entry(sub(wrapper, _NS + "entry"), post, ctx)
    return element_bytes(wrapper)


def _feed_head(
    feed: etree._Element, spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, paging: Paging
) -> None:
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
    sub(feed, _NS + "updated", rfc3339(newest(posts) or EMPTY_FEED_UPDATED))
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


def _entry(entry: etree._Element, post: Post, ctx: FeedContext) -> None:
    sub(entry, _NS + "id", post.guid)
    sub(entry, _NS + "title", line(post.title), type="text")
    sub(entry, _NS + "link", href=post.url, rel="alternate", type="text/html")
    if post.image:
        image = post.image
        sub(entry, _NS + "link", href=image, rel="enclosure", type=image_type(image))
    sub(entry, _NS + "published", rfc3339(post.published))
    sub(entry, _NS + "updated", rfc3339(post.modified))
    if post.author:
        _author(entry, post.author, None, None)
    if post.summary_html:
        sub(entry, _NS + "summary", post.summary_html, type="html")
    elif post.summary.strip():
        sub(entry, _NS + "summary", line(post.summary), type="text")
    sub(entry, _NS + "content", post.content_html, type="html")
    for term in post_terms(post):
        url = term_url(term, ctx)
        name = term_line(term.name)
        sub(entry, _NS + "category", term=name, scheme=url, label=name)


ATOM_FORMAT = FeedFormatSpec("atom", "atom.xml", "application/atom+xml", render_atom)
