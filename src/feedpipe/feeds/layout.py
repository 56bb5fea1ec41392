"""Where each feed lives under output_dir and on the web; one place decides it."""

from __future__ import annotations

from feedpipe.model import FeedSpec
from feedpipe.settings import FeedFormat

FILE_NAMES: dict[FeedFormat, str] = {"rss": "feed.xml", "atom": "atom.xml", "json": "feed.json"}
MEDIA_TYPES: dict[FeedFormat, str] = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
OPML_NAME = "feeds.opml"
XSLT_NAME = "feed.xsl"


def feed_dir(spec: FeedSpec) -> str:
    """Folder of a feed relative to output_dir ('' for the site); slugs never contain '/'."""
    return "" if spec.kind == "site" else f"{spec.kind}/{spec.slug}"


def feed_path(spec: FeedSpec, fmt: FeedFormat) -> str:
    """File path of one feed format relative to output_dir, '/'-separated."""
    folder = feed_dir(spec)
    return f"{folder}/{FILE_NAMES[fmt]}" if folder else FILE_NAMES[fmt]


def feed_url(base_url: str, spec: FeedSpec, fmt: FeedFormat) -> str:
    """Public URL of one feed format, given where output_dir is served."""
    return f"{base_url.rstrip('/')}/{feed_path(spec, fmt)}"
