"""RSS 2.0 rendering with content:encoded, Dublin Core, Media RSS and Atom self/hub links."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from lxml import etree

from feedpipe.feeds.render import (
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
    rfc822,
    splice,
    sub,
    term_line,
    term_url,
    xml_bytes,
)
from feedpipe.feeds.xmltext import element, joined, leaf, long_element
from feedpipe.model import FeedSpec, Post, Term

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"
NSMAP = {"atom": ATOM, "content": CONTENT, "dc": DC, "media": MEDIA}


def render_rss(
    spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, fragments: Fragments, paging: Paging
) -> list[bytes]:
    """One RSS 2.0 document (in parts); lastBuildDate is the newest post's modification time."""
    head = fragments.head("rss", Head(spec, ctx, paging, newest(posts)), _head_bytes, rfc822)
    items = [fragments.get("rss", post, lambda p: _item_bytes(p, ctx)) for post in posts]
    return splice(head, b"</channel></rss>\n", items)


def _head_bytes(head: Head) -> bytes:
    root = etree.Element("rss", {"version": "2.0"}, nsmap=NSMAP)
    _channel_head(sub(root, "channel"), head)
    return xml_bytes(root, head.ctx)


def _item_bytes(post: Post, ctx: FeedContext) -> bytes:
    """One <item>, as lxml would serialise it inside this document (feeds/xmltext.py)."""
    author = post.author or ctx.author
    parts: list[str | bytes] = [
        leaf("title", line(post.title)),
        leaf("link", post.url),
        leaf("guid", post.guid, isPermaLink="false"),
        leaf("pubDate", rfc822(post.published)),
        leaf("dc:creator", line(author)) if author else "",
        leaf("description", post.summary_for_html),  # HTML: the text escaped (content.md)
        long_element("content:encoded", post.content_html),
        *(_category(term, ctx) for term in post_terms(post)),
        _image(post.image, post.image_alt) if post.image else "",
    ]
    return joined("item", parts)


def _channel_head(channel: etree._Element, head: Head) -> None:
    spec, ctx, paging = head.spec, head.ctx, head.paging
    sub(channel, "title", line(spec.title))
    sub(channel, "link", html_url(spec, ctx))
    sub(channel, "description", line(ctx.description) or line(spec.title))
    sub(
        channel,
        f"{{{ATOM}}}link",
        href=RSS_FORMAT.url(spec, ctx, paging.page),
        rel="self",
        type=RSS_FORMAT.media_type,
    )
    _archive_links(channel, spec, ctx, paging)
    for hub in ctx.websub_hubs:
        sub(channel, f"{{{ATOM}}}link", href=hub, rel="hub")
    sub(channel, "language", ctx.language)
    _channel_image(channel, spec, ctx)
    if ctx.author_email:
        sub(channel, "managingEditor", _mailbox(ctx.author_email, ctx.author))
    sub(channel, "generator", ctx.generator)
    if head.built is not None:
        sub(channel, "lastBuildDate", rfc822(head.built))


def _archive_links(
    channel: etree._Element, spec: FeedSpec, ctx: FeedContext, paging: Paging
) -> None:
    """RFC 5005: fh:archive, current, prev-archive and next-archive, as they apply."""
    kind = RSS_FORMAT.media_type
    if paging.page:
        etree.SubElement(channel, f"{{{FH}}}archive", nsmap={"fh": FH})
        sub(channel, f"{{{ATOM}}}link", href=RSS_FORMAT.url(spec, ctx), rel="current", type=kind)
    if paging.prev:
        href = RSS_FORMAT.url(spec, ctx, paging.prev)
        sub(channel, f"{{{ATOM}}}link", href=href, rel="prev-archive", type=kind)
    if paging.next:
        href = RSS_FORMAT.url(spec, ctx, paging.next)
        sub(channel, f"{{{ATOM}}}link", href=href, rel="next-archive", type=kind)


def _channel_image(channel: etree._Element, spec: FeedSpec, ctx: FeedContext) -> None:
    """RSS <image>: the site logo, else its icon (url, title and link as RSS 2.0 asks)."""
    url = ctx.logo or ctx.icon
    if url:
        image = sub(channel, "image")
        sub(image, "url", url)
        sub(image, "title", line(spec.title))
        sub(image, "link", html_url(spec, ctx))


def _mailbox(email: str, name: str | None) -> str:
    return line(f"{email} ({name})" if name else email)


@functools.lru_cache(maxsize=4096)
def _category(term: Term, ctx: FeedContext) -> str:
    return leaf("category", term_line(term.name), domain=term_url(term, ctx))


def _image(url: str, alt: str | None) -> str:
    kind = image_type(url)
    described = leaf("media:description", line(alt), type="plain") if alt else None
    return (
        leaf("enclosure", url=url, type=kind, length="0")
        + element("media:content", described, {"url": url, "type": kind, "medium": "image"})
        + leaf("media:thumbnail", url=url)
    )


RSS_FORMAT = FeedFormatSpec("rss", "feed.xml", "application/rss+xml", render_rss)
