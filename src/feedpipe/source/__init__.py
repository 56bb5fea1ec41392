"""Sources behind one interface: Markdown folder, JSON export, existing feed file."""

from __future__ import annotations

from typing import Protocol

from feedpipe.model import Document, ParsedDocument


class Source(Protocol):
    """Reads documents; instances are frozen and picklable so parsing can run in worker processes.

    `scan` lists documents cheaply (stat only) and raises SourceError when the source itself is
    unusable (missing folder or file). `read` returns raw bytes. `parse` never raises for bad
    content: every problem becomes a `Skip` (with the file and the field or value) and every
    accepted post an `Entry` with its content hash.
    """

    def scan(self) -> list[Document]: ...

    def read(self, doc: Document) -> bytes: ...

    def parse(self, doc: Document, data: bytes) -> ParsedDocument: ...
