"""JSON Feed 1.1 rendering with a fixed key order and a trailing newline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from feedpipe.feeds.render import (
    FeedContext,
    FeedFormatSpec,
    Fragments,
    Paging,
    clean,
    html_url,
    line,
    post_terms,
    rfc3339,
    term_line,
)
from feedpipe.model import FeedSpec, Post

VERSION = "https://jsonfeed.org/version/1.1"


def render_json(
    spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, fragments: Fragments, paging: Paging
) -> list[bytes]:
    """One JSON Feed document (in parts), UTF-8, one item per line, ending in a newline.

    Items are serialised once per build by the C encoder (indent= would force the slow
    pure-Python one) and joined; the head's keys come first, "items" last.
    """
    head_fields = _feed(spec, ctx)
    if paging.prev:  # JSON Feed pagination: next_url names the next (older) items
        head_fields["next_url"] = JSON_FORMAT.url(spec, ctx, paging.prev)
    head = _dumps(head_fields).encode("utf-8")[:-1] + b',"items":['
    if not posts:
        return [head + b"]}\n"]
    parts = [head + b"\n"]
    for post in posts:
        parts += (fragments.get("json", post, _item_bytes), b",\n")
    parts[-1] = b"\n]}\n"
    return parts


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _item_bytes(post: Post) -> bytes:
    """The item's JSON; a long content_html is escaped as bytes (three times quicker than
    the encoder over non-ASCII text) and put in place of an empty one. The first
    `"content_html":""` is the key: the values before it are strings, whose quotes are
    escaped."""
    item = _item(post)
    content = item.get("content_html", "")
    if len(content) < LONG:
        return _dumps(item).encode("utf-8")
    item["content_html"] = ""
    data = _dumps(item).encode("utf-8")
    at = data.index(_EMPTY_CONTENT) + len(_EMPTY_CONTENT) - 1
    return b"".join((data[:at], json_text(content), data[at:]))


LONG = 256  # characters from which content_html is escaped on its own
_EMPTY_CONTENT = b'"content_html":""'
_JSON_ESCAPES = (
    (b"\\", b"\\\\"),
    (b'"', b'\\"'),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\t", b"\\t"),
)


def json_text(value: str) -> bytes:
    """A cleaned string (`render.clean`: no control characters but TAB, LF and CR) as
    `json.dumps(value, ensure_ascii=False)` writes it, without its quotes, in UTF-8."""
    data = value.encode("utf-8")
    for raw, escaped in _JSON_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def _feed(spec: FeedSpec, ctx: FeedContext) -> dict[str, Any]:
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": line(spec.title),
        "home_page_url": html_url(spec, ctx),
        "feed_url": JSON_FORMAT.url(spec, ctx),
    }
    if ctx.description.strip():
        feed["description"] = line(ctx.description)
    if ctx.logo or ctx.icon:
        feed["icon"] = ctx.logo or ctx.icon  # JSON Feed: large and square, for timelines
    if ctx.icon:
        feed["favicon"] = ctx.icon
    feed["language"] = ctx.language
    if ctx.author:
        feed["authors"] = [{"name": line(ctx.author), "url": f"{ctx.site_url}/"}]
    if ctx.websub_hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in ctx.websub_hubs]
    return feed


def _item(post: Post) -> dict[str, Any]:
    item: dict[str, Any] = {"id": clean(post.guid), "url": clean(post.url)}
    item["title"] = line(post.title)
    if post.content_html or not post.summary:
        item["content_html"] = clean(post.content_html)
    else:
        item["content_text"] = line(post.summary)
    if post.summary.strip():
        item["summary"] = line(post.summary)  # plain text, as JSON Feed defines it
    if post.image:
        item["image"] = clean(post.image)
    item["date_published"] = rfc3339(post.published)
    item["date_modified"] = rfc3339(post.modified)
    if post.author:
        item["authors"] = [{"name": line(post.author)}]
    tags = list(dict.fromkeys(term_line(t.name) for t in post_terms(post)))
    if tags:
        item["tags"] = tags
    return item


JSON_FORMAT = FeedFormatSpec("json", "feed.json", "application/feed+json", render_json)
