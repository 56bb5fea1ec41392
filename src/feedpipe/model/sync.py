"""Frozen types the sync decider and the store exchange: document state, links, writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from feedpipe.model.posts import Document, Entry, Skip


def top_folder(key: str) -> str:
    """The first segment of a document key with a folder in it, else "" (a file at the root):
    a sync compares a scan to the store folder by folder."""
    head, sep, _ = key.partition("/")
    return head if sep else ""


@dataclass(frozen=True, slots=True)
class DocState:
    """What the store remembers of a document: its stat, hash, why parts of it were skipped,
    its posts' warnings and how many posts it gave (so a sync that does not parse it again
    still reports all of them; `entries` None: stored before the count was kept)."""

    size: int
    mtime_ns: int
    sha256: str
    skips: tuple[Skip, ...] = ()
    warnings: tuple[Skip, ...] = ()
    entries: int | None = None

    @property
    def clean(self) -> bool:
        """One post, nothing skipped or warned (the store counts these without reading them)."""
        return self.entries == 1 and not self.skips and not self.warnings


@dataclass(frozen=True, slots=True)
class DocWrite:
    """A document parsed again: its stat and hash, and what parsing it reported."""

    doc: Document
    sha256: str
    skips: tuple[Skip, ...] = ()
    warnings: tuple[Skip, ...] = ()
    entries: int = 0


@dataclass(frozen=True, slots=True)
class EntryLink:
    """Which post an entry of a document produced."""

    doc_key: str
    post_id: int
    entry_hash: str


@dataclass(frozen=True, slots=True)
class PostRef:
    """The identity part of a stored post."""

    id: int
    slug: str
    content_hash: str
    removed: bool


@dataclass(frozen=True, slots=True)
class PostWrite:
    """Insert or update one post from an entry under a (possibly disambiguated) slug."""

    slug: str
    entry: Entry
    post_id: int | None  # None: insert


@dataclass(frozen=True, slots=True)
class LinkWrite:
    key: str
    doc_key: str
    slug: str
    entry_hash: str


@dataclass
class SyncChanges:
    """The decider's write set: everything one sync batch writes to the store, in one
    transaction (what it means for the report is a `SyncReport`)."""

    docs_upsert: list[DocWrite] = field(default_factory=list)
    docs_delete: list[str] = field(default_factory=list)
    links_delete: list[str] = field(default_factory=list)
    links_upsert: list[LinkWrite] = field(default_factory=list)
    posts_write: list[PostWrite] = field(default_factory=list)
    posts_remove: list[PostRef] = field(default_factory=list)
