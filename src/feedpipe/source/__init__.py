"""Sources behind one interface: Markdown folder, JSON export, existing feed file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from feedpipe.model import Document, ParsedDocument

if TYPE_CHECKING:
    from feedpipe.settings import Settings

Stat = tuple[str, int, int]  # (key, size, mtime_ns): a document as a scan lists it


class Source(Protocol):
    """Reads documents; instances are frozen and picklable so parsing can run in worker processes.

    `scan` lists documents cheaply (stat only) and raises SourceError when the source itself is
    unusable (missing folder or file); `stats` lists the same as plain tuples, sorted by key
    (what a sync compares, without an object per document). `read` returns raw bytes.
    `parse` never raises for bad content: every problem becomes a `Skip` (with the file and
    the field or value) and every accepted post an `Entry` with its content hash.
    """

    def scan(self) -> list[Document]: ...

    def stats(self) -> list[Stat]: ...

    def read(self, doc: Document) -> bytes: ...

    def parse(self, doc: Document, data: bytes) -> ParsedDocument: ...


def stats_of(docs: list[Document]) -> list[Stat]:
    """The stats of `docs` (a scan), sorted by key."""
    return sorted((d.key, d.size, d.mtime_ns) for d in docs)


def documents(stats: list[Stat]) -> list[Document]:
    """The Documents of `stats`, in their order."""
    return [Document(key, size, mtime) for key, size, mtime in stats]


def open_source(settings: Settings) -> Source:
    """The source configured in `[source]`: kind picks the class; path, site URL and
    summary_format configure it (only that kind's parser is imported)."""
    source, site_url = settings.source, settings.site.url
    if source.kind == "feed":  # a feed file says itself whether a summary is HTML or text
        from feedpipe.source.feedfile import FeedFileSource

        return FeedFileSource(source.path, site_url)
    if source.kind == "json":
        from feedpipe.source.jsonfile import JsonSource

        return JsonSource(source.path, site_url, source.summary_format)
    from feedpipe.source.markdown import MarkdownSource

    return MarkdownSource(source.path, site_url, source.summary_format)
