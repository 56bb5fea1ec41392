"""Sync decider: from scanned and parsed documents plus store state, decide what changes (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from feedpipe.model import (
    Document,
    DocWrite,
    Entry,
    EntryLink,
    LinkWrite,
    ParsedDocument,
    PostRef,
    PostWrite,
    Skip,
    SyncChanges,
    SyncReport,
)
from feedpipe.model.terms import short_hash


@dataclass
class _Claims:
    """Slugs taken during this sync and the content that took them."""

    by_slug: dict[str, str] = field(default_factory=dict)


def candidate_slugs(parsed: Iterable[ParsedDocument]) -> set[str]:
    """Every slug an entry of `parsed` may take: its own, or its disambiguated form."""
    return {s for p in parsed for e in p.entries for s in (e.slug, disambiguated(e))}


def disambiguated(entry: Entry) -> str:
    return f"{entry.slug}-{short_hash(entry.key, 6)}"


def split_by_stat(
    scanned: Iterable[Document], stats: Mapping[str, tuple[int, int]]
) -> tuple[list[Document], list[Document]]:
    """(unchanged by size and mtime, needing a closer look); `stats` is (size, mtime_ns) by key."""
    same: list[Document] = []
    other: list[Document] = []
    for doc in scanned:
        fits = stats.get(doc.key) == (doc.size, doc.mtime_ns)
        (same if fits else other).append(doc)
    return same, other


def decide(
    parsed: list[ParsedDocument],
    gone: Collection[str],
    links: Mapping[str, EntryLink],
    posts: Mapping[str, PostRef],
    now: datetime | None = None,
) -> tuple[SyncChanges, SyncReport]:
    """Decide the writes for documents parsed again and documents that are gone, and what
    they mean (the batch's report).

    `links` and `posts` need only cover those documents' links, the posts they link to, the
    posts holding `candidate_slugs(parsed)`, and all those posts' links. The report's
    `unchanged` counts the entries parsed again whose content had not changed; a new post
    that is a draft, or dated after `now`, counts as a draft or scheduled, not as added.
    """
    changes = SyncChanges()
    reparsed = {p.doc.key for p in parsed}
    changes.docs_delete = sorted(gone)
    dropped = set(gone) | reparsed
    changes.links_delete = [k for k, link in links.items() if link.doc_key in dropped]
    live_hashes: dict[int, set[str]] = defaultdict(set)
    for link in links.values():
        if link.doc_key not in dropped:
            live_hashes[link.post_id].add(link.entry_hash)
    claims = _Claims()
    entries = sorted((e for p in parsed for e in p.entries), key=lambda e: e.key)
    changes.docs_upsert = [_doc_write(p) for p in parsed]
    duplicates = [
        d for entry in entries for d in _place(entry, changes, claims, posts, live_hashes)
    ]
    claimed = set(claims.by_slug)
    for ref in posts.values():
        if not ref.removed and ref.id not in live_hashes and ref.slug not in claimed:
            changes.posts_remove.append(ref)
    buckets: dict[str, list[str]] = defaultdict(list)
    for w in changes.posts_write:  # a write to a missing or removed post adds it
        buckets[_bucket(w, posts, now)].append(w.slug)
    report = SyncReport(
        added=tuple(buckets["added"]),
        updated=tuple(buckets["updated"]),
        removed=tuple(r.slug for r in changes.posts_remove),
        unchanged=len(claimed) - len(changes.posts_write),  # each claim is written or unchanged
        skipped=tuple(s for p in parsed for s in p.skips),
        warnings=tuple(w for write in changes.docs_upsert for w in write.warnings),
        duplicates=tuple(duplicates),
        drafts=tuple(buckets["drafts"]),
        scheduled=tuple(buckets["scheduled"]),
        merged=len(entries) - len(claimed),  # the same post as another file's
    )
    return changes, report


def _doc_write(parsed: ParsedDocument) -> DocWrite:
    warnings = tuple(Skip(e.key, w) for e in parsed.entries for w in e.warnings)
    return DocWrite(parsed.doc, parsed.sha256, parsed.skips, warnings, len(parsed.entries))


def _bucket(write: PostWrite, posts: Mapping[str, PostRef], now: datetime | None) -> str:
    if write.post_id is not None and not posts[write.slug].removed:
        return "updated"
    if write.entry.draft:
        return "drafts"
    if now is not None and write.entry.published > now:
        return "scheduled"
    return "added"


def _slug_taken(
    slug: str,
    content_hash: str,
    claims: _Claims,
    posts: Mapping[str, PostRef],
    live_hashes: Mapping[int, set[str]],
) -> bool:
    """Is `slug` held by different content (another file of this sync, or an unchanged one)?"""
    if slug in claims.by_slug:
        return claims.by_slug[slug] != content_hash
    ref = posts.get(slug)
    if ref is None or ref.id not in live_hashes:
        return False
    return content_hash not in live_hashes[ref.id]


def _place(
    entry: Entry,
    changes: SyncChanges,
    claims: _Claims,
    posts: Mapping[str, PostRef],
    live_hashes: Mapping[int, set[str]],
) -> list[Skip]:
    """Link an entry to its post (claiming its slug) and write the post if it is new or
    changed; the duplicate notes it earned."""
    slug = entry.slug
    notes = []
    if _slug_taken(slug, entry.content_hash, claims, posts, live_hashes):
        slug = disambiguated(entry)
        notes.append(
            Skip(entry.key, f"slug {entry.slug!r} is used by another post; kept as {slug!r}")
        )
    changes.links_upsert.append(LinkWrite(entry.key, entry.doc_key, slug, entry.content_hash))
    if slug in claims.by_slug:
        notes.append(Skip(entry.key, f"same post as another file (slug {slug!r})"))
        return notes
    claims.by_slug[slug] = entry.content_hash
    ref = posts.get(slug)
    if ref is None:
        changes.posts_write.append(PostWrite(slug, entry, None))
    elif ref.removed or ref.content_hash != entry.content_hash:
        changes.posts_write.append(PostWrite(slug, entry, ref.id))
    return notes
