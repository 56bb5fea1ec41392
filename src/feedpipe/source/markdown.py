"""A folder of Markdown posts with YAML front matter, one post per file."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from feedpipe.errors import PostError, SourceError
from feedpipe.model import Document, Entry, ParsedDocument, Skip
from feedpipe.source import Stat, documents
from feedpipe.source.text import decode

if TYPE_CHECKING:  # the parsers (YAML, markdown-it, nh3) load at the first parse
    from feedpipe.source.fields import SummaryFormat

SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True, slots=True)
class MarkdownSource:
    """Every `.md`/`.markdown` file under `root` (hidden files and folders skipped) is a post."""

    root: Path
    site_url: str
    summary_format: SummaryFormat = "text"

    def scan(self) -> list[Document]:
        """Documents sorted by key ('/'-separated path relative to root); stat only."""
        return documents(self.stats())

    def stats(self) -> list[Stat]:
        """(key, size, mtime_ns) of every post file, sorted by key; stat only."""
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: Markdown source folder not found")
        found: list[Stat] = []
        _scan(str(self.root), "", found)
        found.sort()  # keys are unique: tuple order is key order
        return found

    def read(self, doc: Document) -> bytes:
        path = self.root / doc.key
        try:
            return path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path}: cannot read post: {exc.strerror}") from exc

    def parse(self, doc: Document, data: bytes) -> ParsedDocument:
        """One Entry, or one Skip naming the file and the problem; never raises."""
        sha = hashlib.sha256(data).hexdigest()
        try:
            entry = self._entry(doc, data)
        except PostError as exc:
            return ParsedDocument(doc, sha, skips=(Skip(doc.key, exc.reason),))
        except Exception as exc:  # a parser bug must not stop a sync; report it as a skip
            reason = f"{doc.key}: unexpected {type(exc).__name__}: {exc}"
            return ParsedDocument(doc, sha, skips=(Skip(doc.key, reason),))
        return ParsedDocument(doc, sha, entries=(entry,))

    def _entry(self, doc: Document, data: bytes) -> Entry:
        # The parsers (YAML, markdown-it, nh3) load at the first parse: a sync that finds nothing
        # new or changed (one stat pass, one indexed read) never imports them.
        from feedpipe.source import frontmatter
        from feedpipe.source.fields import RawPost, build_entry

        text, warning = decode(data)
        meta, body = frontmatter.split(text, doc.key)
        raw = RawPost(
            doc_key=doc.key,
            label=doc.key,
            meta=meta,
            body=body,
            default_slug=PurePosixPath(doc.key).stem,
            summary_format=self.summary_format,
            warnings=(f"{doc.key}: {warning}",) if warning else (),
        )
        return build_entry(raw, self.site_url)


def _scan(root: str, prefix: str, found: list[Stat]) -> None:
    """os.scandir walk into `found` (its DirEntry caches the file type; one stat a post file,
    no object but a tuple per file)."""
    with os.scandir(root) as entries:
        for item in entries:
            name = item.name
            if name.startswith("."):
                continue
            if item.is_dir():
                _scan(item.path, f"{prefix}{name}/", found)
            elif name.lower().endswith(SUFFIXES) and item.is_file():
                stat = item.stat()
                found.append((prefix + name, stat.st_size, stat.st_mtime_ns))
