"""What every feed format shares: the format record, render context, text/date/URL/XML helpers."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib.resources import files
from typing import TYPE_CHECKING

from lxml import etree

from feedpipe.clock import ensure_utc
from feedpipe.feeds.icons import image_url, site_images
from feedpipe.model import FeedSpec, Post, Term
from feedpipe.model.text import clean_block, clean_line

if TYPE_CHECKING:
    from feedpipe.settings import FeedFormat, Settings

# A document in parts (joined, its bytes): items are shared, so they are written, not copied.
Renderer = Callable[[FeedSpec, Sequence[Post], "FeedContext", "Fragments", "Paging"], list[bytes]]

XSLT_NAME = "feed.xsl"  # the browser stylesheet, next to the site feeds
ARCHIVE_DIR = "history"  # RFC 5005 archive documents live in this folder of each feed
FH = "http://purl.org/syndication/history/1.0"  # RFC 5005 namespace (fh:archive)
AT = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721 namespace (at:deleted-entry)

# Feed-level Atom <updated> of a feed with no posts: a fixed instant, never the clock.
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)

_IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class FeedContext:
    """Everything a renderer needs besides the posts."""

    site_title: str
    site_url: str
    description: str
    language: str
    author: str | None
    author_email: str | None
    feeds_base_url: str  # where output_dir is served (FeedFormatSpec.url uses it)
    websub_hubs: tuple[str, ...]  # every hub, advertised with rel="hub"
    xslt: bool
    generator: str  # e.g. "feedpipe 0.1.0"
    icon: str | None = None  # [site] icon's public URL (small, square)
    logo: str | None = None  # [site] logo's public URL (larger)

    @classmethod
    def from_settings(cls, settings: Settings, generator: str) -> FeedContext:
        """Take the site and feed options out of validated settings."""
        site = settings.site
        return cls(
            site_title=site.title,
            site_url=site.url.rstrip("/"),
            description=site.description,
            language=site.language,
            author=site.author,
            author_email=site.author_email,
            feeds_base_url=settings.feeds_url.rstrip("/"),
            websub_hubs=settings.websub_hubs,
            xslt=settings.feeds.xslt,
            generator=generator,
            icon=image_url(site_images(settings), "icon"),
            logo=image_url(site_images(settings), "logo"),
        )


@dataclass(frozen=True, slots=True)
class FeedFormatSpec:
    """One feed format: its name, file name, media type and renderer (feeds.formats lists them)."""

    format: FeedFormat
    file_name: str
    media_type: str
    render: Renderer

    def path(self, spec: FeedSpec, page: int = 0) -> str:
        """File path of this format of a feed relative to output_dir, '/'-separated;
        page n ≥ 1 is its RFC 5005 archive document n (1 = the oldest)."""
        name = self.file_name
        if page:
            stem, dot, ext = name.rpartition(".")
            name = f"{ARCHIVE_DIR}/{stem}-{page}{dot}{ext}"
        folder = feed_dir(spec)
        return f"{folder}/{name}" if folder else name

    def url(self, spec: FeedSpec, ctx: FeedContext, page: int = 0) -> str:
        """Public URL of this format of a feed (or of its archive page), given where
        output_dir is served."""
        return f"{ctx.feeds_base_url.rstrip('/')}/{self.path(spec, page)}"


@dataclass(frozen=True, slots=True)
class Paging:
    """Where one document sits in its feed's RFC 5005 archive (0 means none)."""

    page: int = 0  # 0: the subscription document; n ≥ 1: archive document n (1 = oldest)
    prev: int = 0  # the next older archive document (prev-archive / JSON next_url)
    next: int = 0  # the next newer archive document (next-archive), archives only
    # Posts that left the feed lately, (guid, when): RFC 6721 tombstones (Atom), page 0 only.
    deleted: tuple[tuple[str, datetime], ...] = ()


NO_PAGING = Paging()


def feed_dir(spec: FeedSpec) -> str:
    """Folder of a feed relative to output_dir ('' for the site); slugs never contain '/'."""
    return "" if spec.kind == "site" else f"{spec.kind}/{spec.slug}"


def clean(text: str) -> str:
    """Drop characters XML cannot carry (defensive: sources should not have them)."""
    return clean_block(text)


def line(text: str) -> str:
    """A single-line, XML-safe text: any run of whitespace (CR/LF too) becomes one space."""
    return clean_line(text)


@functools.lru_cache(maxsize=4096)
def term_line(name: str) -> str:
    """`line` of a term's name: every item renders its posts' term names (kept, not redone)."""
    return clean_line(name)


def rfc822(when: datetime) -> str:
    """RFC 822 date in UTC ('GMT'), independent of the process locale."""
    return format_datetime(ensure_utc(when).replace(microsecond=0), usegmt=True)


def rfc3339(when: datetime) -> str:
    """RFC 3339 date in UTC with a 'Z' suffix, to the second."""
    return ensure_utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def newest(posts: Sequence[Post]) -> datetime | None:
    """Feed-level modification time: the newest `post.modified`, None for an empty feed."""
    return max((ensure_utc(p.modified) for p in posts), default=None)


def html_url(spec: FeedSpec, ctx: FeedContext) -> str:
    """The web page a feed mirrors: the home page or the category/tag page."""
    if spec.kind == "site":
        return f"{ctx.site_url}/"
    return f"{ctx.site_url}/{spec.kind}/{spec.slug}/"


def term_url(term: Term, ctx: FeedContext) -> str:
    """The web page of one category or tag."""
    return f"{ctx.site_url}/{term.kind.value}/{term.slug}/"


def xslt_href(ctx: FeedContext) -> str:
    """Where the shipped stylesheet is served, next to the site feeds."""
    return f"{ctx.feeds_base_url.rstrip('/')}/{XSLT_NAME}"


def image_type(url: str) -> str:
    """Media type of an image guessed from its extension (a fixed table, machine-independent)."""
    path = url.split("#", 1)[0].split("?", 1)[0]
    ext = path.rsplit("/", 1)[-1].rpartition(".")[2].lower()
    return _IMAGE_TYPES.get(ext, "application/octet-stream")


def post_terms(post: Post) -> tuple[Term, ...]:
    """Categories then tags, as the post lists them."""
    return post.categories + post.tags


def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    """Append a child element; characters XML cannot carry are dropped (lxml detects them)."""
    try:
        child = etree.SubElement(parent, tag, attrs)
    except ValueError:
        child = etree.SubElement(parent, tag, {k: clean(v) for k, v in attrs.items()})
    if text is not None:
        try:
            child.text = text
        except ValueError:
            child.text = clean(text)
    return child


def xml_bytes(root: etree._Element, ctx: FeedContext | None = None) -> bytes:
    """Serialise with an XML declaration and, when asked, the browser stylesheet PI."""
    if ctx is not None and ctx.xslt:
        href = xslt_href(ctx).replace('"', "%22")
        root.addprevious(
            etree.ProcessingInstruction("xml-stylesheet", f'type="text/xsl" href="{href}"')
        )
    body = etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=True)
    return body + b"\n"


FRAGMENT_FORMATS = ("rss", "atom", "json")  # the format keys renderers cache items under


@dataclass(frozen=True, slots=True)
class Head:
    """What a document's head (everything before its items) is made of."""

    spec: FeedSpec
    ctx: FeedContext
    paging: Paging
    built: datetime | None  # the newest post's modification time (None: no posts)


# An archive page's head differs from its feed's other pages only by its numbers and time: a
# template is made with these marks and they are replaced (a head is tens of lxml elements).
_MARKS = Paging(987_654_301, 987_654_302, 987_654_303)
_MARK_TIME = datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)
_UNUSABLE = b""  # the template of a feed whose marks also stand for something else (a title)


class Fragments:
    """Rendered items by (format, post, content): a post sits in several feeds of one build,
    and its item is serialised once per format."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, int, str], bytes] = {}
        self._heads: dict[tuple[str, Head], bytes] = {}

    def head(
        self,
        fmt: str,
        head: Head,
        make: Callable[[Head], bytes],
        stamp: Callable[[datetime], str],
    ) -> bytes:
        """`make(head)`; for an archive page, its feed's template filled in instead. The
        template's first use is checked against `make`; if they differ, it is not used."""
        paging = head.paging
        if not paging.page or paging.deleted:
            return make(head)
        marks = Paging(_MARKS.page, paging.prev and _MARKS.prev, paging.next and _MARKS.next)
        mark = Head(head.spec, head.ctx, marks, head.built and _MARK_TIME)
        template = self._heads.get((fmt, mark))
        if template is None:
            template = make(mark)
            real = make(head)
            fits = _fill(template, mark, head, stamp) == real
            self._heads[(fmt, mark)] = template if fits else _UNUSABLE
            return real
        if template == _UNUSABLE:
            return make(head)
        return _fill(template, mark, head, stamp)

    def get(self, fmt: str, post: Post, make: Callable[[Post], bytes]) -> bytes:
        key = (fmt, post.id, post.content_hash)
        found = self._items.get(key)
        if found is None:
            found = self._items[key] = make(post)
        return found

    def forget(self, post: Post) -> None:
        """Drop a post's items (every format): no document left to render lists it."""
        for fmt in FRAGMENT_FORMATS:
            self._items.pop((fmt, post.id, post.content_hash), None)


def _fill(template: bytes, mark: Head, head: Head, stamp: Callable[[datetime], str]) -> bytes:
    """The head of `head` from a template made for `mark`: its marks replaced."""
    pairs = zip(
        (mark.paging.page, mark.paging.prev, mark.paging.next),
        (head.paging.page, head.paging.prev, head.paging.next),
        strict=True,
    )
    for marked, real in pairs:
        if marked:
            template = template.replace(b"%d" % marked, b"%d" % real)
    if mark.built is not None and head.built is not None:
        template = template.replace(stamp(mark.built).encode(), stamp(head.built).encode())
    return template


def splice(head: bytes, tail: bytes, items: Sequence[bytes]) -> list[bytes]:
    """The document in parts: serialised items inserted before `tail`, the closing tags
    `head` ends with."""
    if not head.endswith(tail):
        raise AssertionError(f"serialised feed head does not end with {tail!r}")
    return [head[: -len(tail)], *items, tail]


@functools.cache
def xslt_stylesheet() -> bytes:
    """The browser stylesheet (feed.xsl) shipped as package data."""
    return files("feedpipe.feeds").joinpath(XSLT_NAME).read_bytes()
