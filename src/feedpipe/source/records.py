"""Shared plumbing for sources whose one file holds many posts (JSON exports, feed files)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from feedpipe.errors import PostError, SourceError
from feedpipe.model import Document, Entry, ParsedDocument, Skip
from feedpipe.source.fields import RawPost, build_entry

_PAGE_SUFFIXES = (".html", ".htm", ".php", ".aspx")


def file_document(path: Path, what: str) -> Document:
    """The single Document of a one-file source, keyed by file name; SourceError if missing."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise SourceError(f"{path}: {what} not found ({exc.strerror})") from exc
    if not path.is_file():
        raise SourceError(f"{path}: {what} is not a file")
    return Document(key=path.name, size=stat.st_size, mtime_ns=stat.st_mtime_ns)


def read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read {what}: {exc.strerror}") from exc


@dataclass(frozen=True, slots=True)
class _Collected:
    entries: list[Entry]
    skips: list[Skip]
    seen: dict[str, str]  # entry key → label of the record that produced it


def guarded_parse(
    doc: Document, data: bytes, records: Callable[[], Iterable[RawPost | Skip]], site_url: str
) -> ParsedDocument:
    """Entries and skips for every record; a document-level problem is one Skip; never raises."""
    sha = hashlib.sha256(data).hexdigest()
    try:
        entries, skips = collect(records(), site_url)
    except PostError as exc:
        return ParsedDocument(doc, sha, skips=(Skip(doc.key, exc.reason),))
    except Exception as exc:  # a parser bug must not stop a sync; report it as a skip
        reason = f"{doc.key}: unexpected {type(exc).__name__}: {exc}"
        return ParsedDocument(doc, sha, skips=(Skip(doc.key, reason),))
    return ParsedDocument(doc, sha, entries=entries, skips=skips)


def collect(
    records: Iterable[RawPost | Skip], site_url: str
) -> tuple[tuple[Entry, ...], tuple[Skip, ...]]:
    """Build each record; a second record with an already used slug is skipped."""
    acc = _Collected([], [], {})
    for record in records:
        if isinstance(record, Skip):
            acc.skips.append(record)
            continue
        _add(acc, record, site_url)
    return tuple(acc.entries), tuple(acc.skips)


def _add(acc: _Collected, raw: RawPost, site_url: str) -> None:
    skip_key = raw.skip_key or raw.doc_key
    try:
        entry = build_entry(raw, site_url)
    except PostError as exc:
        acc.skips.append(Skip(skip_key, exc.reason))
        return
    first = acc.seen.get(entry.key)
    if first is not None:
        reason = f"{raw.label}: slug: duplicate slug {entry.slug!r} (first used by {first})"
        acc.skips.append(Skip(skip_key, reason))
        return
    acc.seen[entry.key] = raw.label
    acc.entries.append(entry)


def slug_from_link(link: str | None) -> str | None:
    """The last path segment of a post URL (`/posts/my-post/` → `my-post`), if any."""
    if not link:
        return None
    segment = unquote(urlsplit(link).path.rstrip("/").rpartition("/")[2])
    for suffix in _PAGE_SUFFIXES:
        segment = segment.removesuffix(suffix)
    return segment or None
