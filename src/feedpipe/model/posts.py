"""Frozen domain types shared by sources, store, feeds and digests."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from feedpipe.model.text import html_text


class TermKind(enum.StrEnum):
    """What a term classifies: categories get feeds and digests; tags get feeds."""

    CATEGORY = "category"
    TAG = "tag"


@dataclass(frozen=True, slots=True)
class Term:
    """A category or tag: display name, comparison key and URL slug (unique per kind)."""

    kind: TermKind
    name: str
    key: str
    slug: str


@dataclass(frozen=True, slots=True)
class Document:
    """A unit a source can read: a Markdown file, a JSON export, a feed file."""

    key: str  # stable, relative to the source root, '/'-separated
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Entry:
    """One post as parsed from a source, before the store gives it an identity."""

    key: str  # entry key: document key, or "doc#slug" for exports holding many posts
    doc_key: str
    title: str
    slug: str
    published: datetime  # aware UTC
    updated: datetime | None
    summary: str  # plain text, literal (docs/content.md)
    content_html: str  # sanitised, absolute links
    categories: tuple[str, ...]  # cleaned display names, first spelling wins
    tags: tuple[str, ...]
    summary_html: str | None = None  # sanitised HTML of a Markdown summary (summary_format)
    draft: bool = False
    author: str | None = None
    image: str | None = None  # absolute URL
    image_alt: str | None = None
    reading_time: int | None = None
    url: str | None = None  # explicit canonical URL from the source
    content_hash: str = ""  # sha256 hex of everything above that a reader sees
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Skip:
    """A document or entry that was not accepted, and why."""

    key: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """What parsing one document gave: accepted entries and skipped parts."""

    doc: Document
    sha256: str
    entries: tuple[Entry, ...] = ()
    skips: tuple[Skip, ...] = ()


@dataclass(frozen=True, slots=True)
class Post:
    """A post in the store, with its stable identity."""

    id: int
    guid: str  # never changes once assigned; feeds use it as id/guid
    slug: str
    url: str
    title: str
    summary: str
    content_html: str
    published: datetime
    updated: datetime | None
    categories: tuple[Term, ...]
    tags: tuple[Term, ...]
    author: str | None
    image: str | None
    image_alt: str | None
    reading_time: int | None
    draft: bool
    content_hash: str
    first_seen_at: datetime
    removed_at: datetime | None = None
    summary_html: str | None = None  # sanitised HTML of a Markdown summary, else None

    @property
    def summary_for_html(self) -> str:
        """The summary for an HTML context: its own HTML, else the plain text escaped."""
        return self.summary_html if self.summary_html is not None else html_text(self.summary)

    @property
    def modified(self) -> datetime:
        """Last modification as a reader sees it: `updated`, else `published`."""
        return self.updated if self.updated and self.updated > self.published else self.published


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync (or one batch of it) did; `total` adds the batches of a sync up.

    Every post or part of a document the sync saw is counted once: `seen` = added + drafts +
    scheduled + updated + removed + unchanged + skipped + merged. `added` holds new posts that
    are published now; new drafts and new future-dated posts are `drafts` and `scheduled`;
    `merged` counts entries that are the same post as another file's (see `duplicates`).
    `warnings` are the current warnings of every document, parsed again or not.
    """

    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    unchanged: int = 0
    skipped: tuple[Skip, ...] = ()
    warnings: tuple[Skip, ...] = ()
    duplicates: tuple[Skip, ...] = ()
    seconds: float = 0.0
    drafts: tuple[str, ...] = ()
    scheduled: tuple[str, ...] = ()
    merged: int = 0

    @property
    def seen(self) -> int:
        """Posts and skipped parts counted, each in exactly one bucket."""
        written = len(self.added) + len(self.drafts) + len(self.scheduled) + len(self.updated)
        return written + len(self.removed) + self.unchanged + len(self.skipped) + self.merged

    @classmethod
    def total(cls, parts: Sequence[SyncReport], seconds: float) -> SyncReport:
        """The parts' names and counts concatenated in order, taking `seconds` overall."""
        return cls(
            added=tuple(name for p in parts for name in p.added),
            updated=tuple(name for p in parts for name in p.updated),
            removed=tuple(name for p in parts for name in p.removed),
            unchanged=sum(p.unchanged for p in parts),
            skipped=tuple(skip for p in parts for skip in p.skipped),
            warnings=tuple(skip for p in parts for skip in p.warnings),
            duplicates=tuple(skip for p in parts for skip in p.duplicates),
            seconds=seconds,
            drafts=tuple(name for p in parts for name in p.drafts),
            scheduled=tuple(name for p in parts for name in p.scheduled),
            merged=sum(p.merged for p in parts),
        )


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One logical feed: the whole site, a category or a tag."""

    kind: str  # "site" | "category" | "tag"
    slug: str  # "" for the site
    title: str
    term: Term | None = None

    @property
    def key(self) -> str:
        return "site" if self.kind == "site" else f"{self.kind}/{self.slug}"


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What one build did, counted in files."""

    written: tuple[str, ...] = ()
    unchanged: int = 0
    removed: tuple[str, ...] = ()
    feeds: int = 0
    seconds: float = 0.0
    sync: SyncReport | None = field(default=None)
