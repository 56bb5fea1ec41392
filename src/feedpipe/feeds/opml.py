"""OPML 2.0 subscription list: one outline per feed, in the order given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from lxml import etree

from feedpipe.feeds.formats import FORMATS
from feedpipe.feeds.render import FeedContext, html_url, line, sub, xml_bytes
from feedpipe.model import FeedSpec

if TYPE_CHECKING:
    from feedpipe.settings import FeedFormat


def render_opml(
    specs: Sequence[FeedSpec], formats: Sequence[FeedFormat], ctx: FeedContext
) -> bytes:
    """One outline per spec; xmlUrl is the first format's URL (RSS-typed, as OPML expects)."""
    if not formats:
        raise ValueError("render_opml needs at least one feed format")
    root = etree.Element("opml", {"version": "2.0"})
    head = sub(root, "head")
    sub(head, "title", line(f"{ctx.site_title} — feeds"))
    if ctx.author:
        sub(head, "ownerName", line(ctx.author))
    body = sub(root, "body")
    for spec in specs:
        title = line(spec.title)
        attrs = {"type": "rss", "text": title, "title": title}
        attrs |= {"xmlUrl": FORMATS[formats[0]].url(spec, ctx), "htmlUrl": html_url(spec, ctx)}
        etree.SubElement(body, "outline", attrs)
    return xml_bytes(root)
