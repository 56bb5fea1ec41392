"""Feed items built as lxml trees and serialised by lxml: what the string-built items equal."""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from feedpipe.feeds.jsonfeed import _item as json_item
from feedpipe.feeds.render import (
    FeedContext,
    image_type,
    line,
    post_terms,
    rfc822,
    rfc3339,
    sub,
    term_line,
    term_url,
)
from feedpipe.feeds.rss import NSMAP
from feedpipe.model import Post

ATOM = "http://www.w3.org/2005/Atom"
_NS = f"{{{ATOM}}}"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"


def element_bytes(wrapper: etree._Element) -> bytes:
    """The serialised children of `wrapper` (whose namespaces match the real document root)."""
    data = etree.tostring(wrapper, encoding="UTF-8", xml_declaration=False)
    return data[data.index(b">") + 1 : data.rindex(b"</")]


def rss_item(post: Post, ctx: FeedContext) -> bytes:
    wrapper = etree.Element("rss", nsmap=NSMAP)
    item = sub(wrapper, "item")
    sub(item, "title", line(post.title))
    sub(item, "link", post.url)
    sub(item, "guid", post.guid, isPermaLink="false")
    sub(item, "pubDate", rfc822(post.published))
    author = post.author or ctx.author
    if author:
        sub(item, f"{{{DC}}}creator", line(author))
    sub(item, "description", post.summary_for_html)
    sub(item, f"{{{CONTENT}}}encoded", post.content_html)
    for term in post_terms(post):
        sub(item, "category", term_line(term.name), domain=term_url(term, ctx))
    if post.image:
        kind = image_type(post.image)
        sub(item, "enclosure", url=post.image, type=kind, length="0")
        media = sub(item, f"{{{MEDIA}}}content", url=post.image, type=kind, medium="image")
        if post.image_alt:
            sub(media, f"{{{MEDIA}}}description", line(post.image_alt), type="plain")
        sub(item, f"{{{MEDIA}}}thumbnail", url=post.image)
    return element_bytes(wrapper)


def atom_entry(post: Post, ctx: FeedContext) -> bytes:
    wrapper = etree.Element(_NS + "feed", nsmap={None: ATOM})  # type: ignore[dict-item]
    entry = sub(wrapper, _NS + "entry")
    sub(entry, _NS + "id", post.guid)
    sub(entry, _NS + "title", line(post.title), type="text")
    sub(entry, _NS + "link", href=post.url, rel="alternate", type="text/html")
    if post.image:
        sub(entry, _NS + "link", href=post.image, rel="enclosure", type=image_type(post.image))
    sub(entry, _NS + "published", rfc3339(post.published))
    sub(entry, _NS + "updated", rfc3339(post.modified))
    if post.author:
        author = sub(entry, _NS + "author")
        sub(author, _NS + "name", line(post.author))
    if post.summary_html:
        sub(entry, _NS + "summary", post.summary_html, type="html")
    elif post.summary.strip():
        sub(entry, _NS + "summary", line(post.summary), type="text")
    sub(entry, _NS + "content", post.content_html, type="html")
    for term in post_terms(post):
        name = term_line(term.name)
        sub(entry, _NS + "category", term=name, scheme=term_url(term, ctx), label=name)
    return element_bytes(wrapper)


def json_item_bytes(post: Post) -> bytes:
    item: dict[str, Any] = json_item(post)
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
