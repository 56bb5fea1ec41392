"""The human page of a feed: what it is, its posts, how to subscribe (index.html in its folder)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from feedpipe.feeds.formats import FORMATS, OPML_NAME
from feedpipe.feeds.render import FeedContext, feed_dir, html_url, line, rfc3339
from feedpipe.model import FeedSpec, Post
from feedpipe.settings import FeedFormat

if TYPE_CHECKING:  # Jinja2 loads when a page is rendered: a build with nothing to write never
    from jinja2 import Environment

PAGE_NAME = "index.html"
# Written into every page; a page without it was not written by feedpipe and is never replaced.
GENERATOR_MARK = b'<meta name="generator" content="feedpipe'
# Web readers that take a feed URL in a link (the URL is percent-encoded into it).
READERS = (
    ("Feedly", "https://feedly.com/i/subscription/feed/{url}"),
    ("Inoreader", "https://www.inoreader.com/?add_feed={url}"),
    ("NewsBlur", "https://www.newsblur.com/?url={url}"),
    ("The Old Reader", "https://theoldreader.com/feeds/subscribe?url={url}"),
)


def page_path(spec: FeedSpec) -> str:
    """Where a feed's page is written relative to output_dir, next to its feed files."""
    folder = feed_dir(spec)
    return f"{folder}/{PAGE_NAME}" if folder else PAGE_NAME


@functools.cache
def _environment() -> Environment:
    """Every value is HTML-escaped: titles and summaries are plain text."""
    from jinja2 import PackageLoader

    from feedpipe.emails import jinja

    return jinja.environment(
        PackageLoader("feedpipe.feeds", "templates"), True, keep_trailing_newline=True
    )


def render_page(
    spec: FeedSpec, posts: Sequence[Post], ctx: FeedContext, formats: Sequence[FeedFormat]
) -> bytes:
    """The HTML page for people; deterministic (no clock), so a rebuild gives the same bytes."""
    feeds = [
        {"name": FORMATS[f].format, "url": FORMATS[f].url(spec, ctx), "type": FORMATS[f].media_type}
        for f in formats
    ]
    main = feeds[0]["url"]
    items = [
        {
            "title": line(p.title) or rfc3339(p.published)[:10],
            "url": p.url,
            "date": rfc3339(p.published),
            "day": rfc3339(p.published)[:10],
            "summary": line(p.summary),
        }
        for p in posts
    ]
    html = (
        _environment()
        .get_template("feed.html.j2")
        .render(
            title=line(spec.title),
            description=line(ctx.description),
            language=ctx.language,
            generator=ctx.generator,
            home=html_url(spec, ctx),
            site_title=line(ctx.site_title),
            feeds=feeds,
            main_url=main,
            readers=[(n, u.format(url=quote(main, safe=""))) for n, u in READERS],
            opml=f"{ctx.feeds_base_url.rstrip('/')}/{OPML_NAME}",
            items=items,
        )
    )
    return html.encode("utf-8")


def written_by_us(existing: bytes) -> bool:
    """Whether a page found in output_dir is one of ours (so it may be replaced)."""
    return GENERATOR_MARK in existing[:2048]
