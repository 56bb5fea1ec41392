"""An existing feed file as a source: RSS or Atom (via feedparser) or JSON Feed."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser

from feedpipe.errors import PostError
from feedpipe.model import Document, ParsedDocument, Skip
from feedpipe.source import Stat, stats_of
from feedpipe.source.fields import RawPost
from feedpipe.source.html import plain_text
from feedpipe.source.records import file_document, guarded_parse, read_file, slug_from_link
from feedpipe.source.text import decode

JSON_FEED_VERSION = "https://jsonfeed.org/version/"


@dataclass(frozen=True, slots=True)
class FeedFileSource:
    """One RSS, Atom or JSON Feed file; each item is a post keyed `file#slug`."""

    path: Path
    site_url: str

    def scan(self) -> list[Document]:
        return [file_document(self.path, "feed file")]

    def stats(self) -> list[Stat]:
        return stats_of(self.scan())

    def read(self, doc: Document) -> bytes:
        return read_file(self.path, "feed file")

    def parse(self, doc: Document, data: bytes) -> ParsedDocument:
        """Accepted items and one Skip per bad item; an unreadable feed is one Skip."""
        return guarded_parse(doc, data, lambda: _records(doc.key, data), self.site_url)


def _records(name: str, data: bytes) -> Iterator[RawPost | Skip]:
    if data.lstrip()[:1] == b"{":
        return _json_feed(name, data)
    return _xml_feed(name, data)


def _json_feed(name: str, data: bytes) -> Iterator[RawPost | Skip]:
    text, _ = decode(data)
    try:
        feed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PostError(
            name, f"{name}: invalid JSON Feed: {exc.msg} at line {exc.lineno}"
        ) from None
    version = feed.get("version") if isinstance(feed, dict) else None
    if not isinstance(version, str) or not version.startswith(JSON_FEED_VERSION):
        raise PostError(name, f"{name}: JSON without a JSON Feed version URL ({version!r})")
    items = feed.get("items")
    if not isinstance(items, list):
        raise PostError(name, f"{name}: JSON Feed 'items' is not an array")
    return (_json_item(name, index, item) for index, item in enumerate(items))


def _json_item(name: str, index: int, fields: object) -> RawPost | Skip:
    label = f"{name} item {index}"
    if not isinstance(fields, dict):
        return Skip(f"{name}#item {index}", f"{label}: expected an object, got {fields!r:.40}")
    meta = {
        "title": fields.get("title"),
        "date": fields.get("date_published") or fields.get("date_modified"),
        "updated": fields.get("date_modified"),
        "summary": fields.get("summary"),
        "categories": fields.get("tags"),
        "image": fields.get("image") or fields.get("banner_image"),
        "author": _json_author(fields),
        "url": fields.get("url") or fields.get("external_url"),
    }
    return RawPost(
        doc_key=name,
        label=label,
        meta=meta,
        html=_json_content(fields),
        default_slug=slug_from_link(_text_or_none(meta["url"])),
        keyed=True,
        skip_key=f"{name}#item {index}",
    )


def _json_author(fields: Mapping[str, Any]) -> object:
    authors = fields.get("authors")
    if isinstance(authors, list) and authors:
        return authors[0]
    return fields.get("author")


def _json_content(fields: Mapping[str, Any]) -> str:
    content = fields.get("content_html")
    if isinstance(content, str):
        return content
    text = fields.get("content_text")
    if not isinstance(text, str):
        return ""
    paragraphs = (part.strip() for part in text.split("\n\n"))
    return "".join(f"<p>{html.escape(part)}</p>" for part in paragraphs if part)


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _xml_feed(name: str, data: bytes) -> Iterator[RawPost | Skip]:
    parsed = feedparser.parse(data)
    if not parsed.get("version") and not parsed.entries:
        problem = parsed.get("bozo_exception") or "no RSS or Atom structure found"
        raise PostError(name, f"{name}: not an RSS, Atom or JSON feed: {problem}")
    return (_xml_item(name, index, entry) for index, entry in enumerate(parsed.entries))


def _xml_item(name: str, index: int, entry: dict[str, Any]) -> RawPost:
    summary_detail = entry.get("summary_detail") or {}
    updated = dict.get(entry, "updated")  # not entry.get: that falls back to `published`
    published = entry.get("published") or updated
    meta = {
        "title": _xml_title(entry),
        "date": published,
        "updated": updated if updated != published else None,
        "summary": entry.get("summary"),
        "categories": [tag.get("label") or tag.get("term") for tag in entry.get("tags", [])],
        "image": _xml_image(entry),
        "author": entry.get("author"),
        "url": entry.get("link"),
    }
    return RawPost(
        doc_key=name,
        label=f"{name} item {index}",
        meta=meta,
        html=_xml_content(entry),
        default_slug=slug_from_link(entry.get("link")),
        keyed=True,
        summary_format="text" if summary_detail.get("type") == "text/plain" else "html",
        skip_key=f"{name}#item {index}",
    )


def _xml_title(entry: Mapping[str, Any]) -> str | None:
    title = entry.get("title")
    detail = entry.get("title_detail") or {}
    if isinstance(title, str) and detail.get("type") in ("text/html", "application/xhtml+xml"):
        return plain_text(title)
    return title if isinstance(title, str) else None


def _xml_content(entry: Mapping[str, Any]) -> str:
    for content in entry.get("content", []):
        value = content.get("value")
        if isinstance(value, str) and value.strip():
            return value
    summary = entry.get("summary")
    return summary if isinstance(summary, str) else ""


def _xml_image(entry: Mapping[str, Any]) -> str | None:
    for link in entry.get("links", []):
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/"):
            return _text_or_none(link.get("href"))
    for media in entry.get("media_content", []):
        if media.get("medium") == "image" or str(media.get("type", "")).startswith("image/"):
            return _text_or_none(media.get("url"))
    thumbnails = entry.get("media_thumbnail") or []
    return _text_or_none(thumbnails[0].get("url")) if thumbnails else None
