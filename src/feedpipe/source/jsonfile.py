"""A JSON export of posts: a JSON array of objects, or JSON Lines (one object per line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedpipe.errors import PostError
from feedpipe.model import Document, ParsedDocument, Skip
from feedpipe.source import Stat, stats_of
from feedpipe.source.fields import RawPost, SummaryFormat
from feedpipe.source.records import file_document, guarded_parse, read_file
from feedpipe.source.text import decode


@dataclass(frozen=True, slots=True)
class JsonSource:
    """One export file; each object is a post with front-matter fields plus `body` (Markdown)
    or `content_html`. Entry keys are `file#slug`."""

    path: Path
    site_url: str
    summary_format: SummaryFormat = "text"

    def scan(self) -> list[Document]:
        return [file_document(self.path, "JSON export")]

    def stats(self) -> list[Stat]:
        return stats_of(self.scan())

    def read(self, doc: Document) -> bytes:
        return read_file(self.path, "JSON export")

    def parse(self, doc: Document, data: bytes) -> ParsedDocument:
        """Accepted posts and one Skip per bad record (naming line or index); never raises."""
        return guarded_parse(
            doc, data, lambda: _records(doc, data, self.summary_format), self.site_url
        )


def _records(doc: Document, data: bytes, summary: SummaryFormat) -> Iterator[RawPost | Skip]:
    text, warning = decode(data)
    notes = (f"{doc.key}: {warning}",) if warning else ()
    for label, item in _items(doc.key, text):
        if isinstance(item, Skip):
            yield item
        elif not isinstance(item, dict):
            reason = f"{label}: expected an object, got {_json_type(item)}"
            yield Skip(_skip_key(doc.key, label), reason)
        else:
            yield _raw_post(doc.key, label, item, notes, summary)


def _items(name: str, text: str) -> Iterator[tuple[str, Any]]:
    """(label, value) for each record: `file [i]` for an array, `file line n` for JSON Lines."""
    if not text.strip():
        raise PostError(name, f"{name}: empty file")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("["):
            reason = f"{name}: invalid JSON array: {exc.msg} at line {exc.lineno}"
            raise PostError(name, reason) from None
        yield from _json_lines(name, text)
        return
    if isinstance(whole, list):
        yield from ((f"{name} [{index}]", item) for index, item in enumerate(whole))
    elif isinstance(whole, dict):
        yield f"{name} line 1", whole
    else:
        reason = f"{name}: expected a JSON array of posts or JSON Lines, got {_json_type(whole)}"
        raise PostError(name, reason)


def _json_lines(name: str, text: str) -> Iterator[tuple[str, Any]]:
    parsed: list[tuple[str, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            parsed.append((f"{name} line {number}", _json_line(name, number, line)))
    if all(isinstance(value, Skip) for _, value in parsed):
        first = parsed[0][1] if parsed else None
        detail = first.reason.partition(": ")[2] if isinstance(first, Skip) else "no records"
        raise PostError(name, f"{name}: not JSON or JSON Lines ({detail})")
    yield from parsed


def _json_line(name: str, number: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        reason = f"{name} line {number}: invalid JSON: {exc.msg} at column {exc.colno}"
        return Skip(f"{name}#line {number}", reason)


def _raw_post(
    name: str, label: str, item: dict[str, Any], notes: tuple[str, ...], summary: SummaryFormat
) -> RawPost:
    body = item.get("body")
    html = item.get("content_html")
    warnings = list(notes)
    if body is not None and not isinstance(body, str):
        warnings.append(f"{label}: body: expected Markdown text, got {_json_type(body)}; ignored")
        body = None
    if html is not None and not isinstance(html, str):
        warnings.append(f"{label}: content_html: expected text, got {_json_type(html)}; ignored")
        html = None
    return RawPost(
        doc_key=name,
        label=label,
        meta=item,
        body=body or "",
        html=html if body is None else None,
        keyed=True,
        summary_format=summary,
        skip_key=_skip_key(name, label),
        warnings=tuple(warnings),
    )


def _skip_key(name: str, label: str) -> str:
    """`file#[3]` or `file#line 3`: never a valid slug, so never an accepted entry's key."""
    return f"{name}#{label.removeprefix(name + ' ')}"


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
