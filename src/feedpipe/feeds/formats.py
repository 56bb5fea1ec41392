"""The feed formats, one record each (file name, media type, renderer), and rendering by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from feedpipe.feeds.atom import ATOM_FORMAT
from feedpipe.feeds.jsonfeed import JSON_FORMAT
from feedpipe.feeds.render import (
    NO_PAGING,
    XSLT_NAME,
    FeedContext,
    FeedFormatSpec,
    Fragments,
    Paging,
)
from feedpipe.feeds.rss import RSS_FORMAT
from feedpipe.model import FeedSpec, Post
from feedpipe.settings import FeedFormat

FORMATS: Mapping[FeedFormat, FeedFormatSpec] = MappingProxyType(
    {spec.format: spec for spec in (RSS_FORMAT, ATOM_FORMAT, JSON_FORMAT)}
)
FILE_NAMES: Mapping[FeedFormat, str] = MappingProxyType(
    {fmt: spec.file_name for fmt, spec in FORMATS.items()}
)
MEDIA_TYPES: Mapping[FeedFormat, str] = MappingProxyType(
    {fmt: spec.media_type for fmt, spec in FORMATS.items()}
)
OPML_NAME = "feeds.opml"


def render_feed(
    fmt: FeedFormat,
    spec: FeedSpec,
    posts: Sequence[Post],
    ctx: FeedContext,
    fragments: Fragments | None = None,
    paging: Paging = NO_PAGING,
) -> bytes:
    """One feed file in one format; `posts` are newest first and already selected.

    Pass one `Fragments` to every call of a build so shared posts are serialised once;
    `paging` places the document in the feed's RFC 5005 archive (feeds.archive).
    """
    return b"".join(render_parts(fmt, spec, posts, ctx, fragments, paging))


def render_parts(
    fmt: FeedFormat,
    spec: FeedSpec,
    posts: Sequence[Post],
    ctx: FeedContext,
    fragments: Fragments | None = None,
    paging: Paging = NO_PAGING,
) -> list[bytes]:
    """`render_feed`'s bytes in parts, to be written as they are (not joined: a build's
    documents hold gigabytes of items, each part shared by several of them)."""
    return FORMATS[fmt].render(spec, posts, ctx, fragments or Fragments(), paging)


__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "MEDIA_TYPES",
    "OPML_NAME",
    "XSLT_NAME",
    "FeedFormatSpec",
    "Paging",
    "render_feed",
    "render_parts",
]
