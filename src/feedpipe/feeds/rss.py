"""RSS 2.0 rendering with content:encoded, Dublin Core, Media RSS and Atom self/hub links."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from feedpipe.feeds.render import (
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
    rfc822,
    splice,
    sub,
    term_line,
    term_url,
    xml_bytes,
)
from feedpipe.model import FeedSpec, Post

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"
NSMAP = {"atom": ATOM, "content": CONTENT, "dc": DC, "media": MEDIA}


def render_rss(
    spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, fragments: Fragments, paging: Paging
) -> bytes:
    """One RSS 2.0 document; lastBuildDate is the newest post's modification time."""
    root = etree.Element("rss", {"version": "2.0"}, nsmap=NSMAP)
    channel = sub(root, "channel")
    _channel_head(channel, spec, posts, ctx, paging)
    items = [fragments.get("rss", post, lambda p: _item_bytes(p, ctx)) for post in posts]
    return splice(xml_bytes(root, ctx), b"</channel></rss>\n", items)


def _item_bytes(post: Post, ctx: FeedContext) -> bytes:
    wrapper = etree.Element("rss", nsmap=NSMAP)
    _item(sub(wrapper, "item"), post, ctx)
    return element_bytes(wrapper)


def _channel_head(
    channel: etree._Element, spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, paging: Paging
) -> None:
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
    built = newest(posts)
    if built is not None:
        sub(channel, "lastBuildDate", rfc822(built))


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


def _item(item: etree._Element, post: Post, ctx: FeedContext) -> None:
    sub(item, "title", line(post.title))
    sub(item, "link", post.url)
    sub(item, "guid", post.guid, isPermaLink="false")
    sub(item, "pubDate", rfc822(post.published))
    author = post.author or ctx.author
    if author:
        sub(item, f"{{{DC}}}creator", line(author))
    sub(item, "description", post.summary_for_html)  # HTML: the text escaped (content.md)
    sub(item, f"{{{CONTENT}}}encoded", post.content_html)
    for term in post_terms(post):
        sub(item, "category", term_line(term.name), domain=term_url(term, ctx))
    if post.image:
        _image(item, post.image, post.image_alt)


def _image(item: etree._Element, url: str, alt: str | None) -> None:
    kind = image_type(url)
    sub(item, "enclosure", url=url, type=kind, length="0")
    media = sub(item, f"{{{MEDIA}}}content", url=url, type=kind, medium="image")
    if alt:
        sub(media, f"{{{MEDIA}}}description", line(alt), type="plain")
    sub(item, f"{{{MEDIA}}}thumbnail", url=url)


RSS_FORMAT = FeedFormatSpec("rss", "feed.xml", "application/rss+xml", render_rss)
