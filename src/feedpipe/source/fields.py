"""Field coercion shared by all sources: raw post fields → a validated, hashed `Entry`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from slugify import slugify

from feedpipe.errors import PostError
from feedpipe.model import Entry
from feedpipe.model.terms import short_hash, unique_names
from feedpipe.model.text import clean_line, truncate
from feedpipe.source.html import (
    absolute_url,
    first_paragraph,
    plain_text,
    render_inline_markdown,
    render_markdown,
    sanitize,
)

TITLE_LIMIT = 90
SLUG_LIMIT = 100
_SAFE_SLUG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._~-]*")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off", ""})
_NOT_HASHED = frozenset({"key", "doc_key", "content_hash", "warnings"})
# How a source's `summary` field is written: plain text (the default; literal everywhere),
# inline Markdown (`[source] summary_format = "markdown"`), or HTML (a feed file said so).
SummaryFormat = Literal["text", "markdown", "html"]


@dataclasses.dataclass(frozen=True, slots=True)
class RawPost:
    """One post's raw fields as a source found them, before coercion.

    `label` names the post in messages (file, and line or index for multi-post files); `body`
    is Markdown unless `html` is given; `keyed` makes the entry key `doc_key#slug`;
    `summary_format` says how the summary field is written (docs/content.md).
    """

    doc_key: str
    label: str
    meta: Mapping[str, Any]
    body: str = ""
    html: str | None = None
    default_slug: str | None = None
    keyed: bool = False
    summary_format: SummaryFormat = "text"
    skip_key: str | None = None
    warnings: tuple[str, ...] = ()


def build_entry(raw: RawPost, site_url: str) -> Entry:
    """The accepted `Entry` for `raw`; raises PostError naming the file and field otherwise."""
    notes = _Notes(raw.label, list(raw.warnings))
    meta = raw.meta
    content = sanitize(raw.html, site_url) if raw.html is not None else None
    content_html = content if content is not None else render_markdown(raw.body, site_url)
    published = _published(meta, raw)
    summary = _summary(meta, raw, content_html, site_url)
    title = _title(meta, summary, notes, raw)
    updated = _optional_date(meta.get("updated"), "updated", notes)
    if updated is not None and updated < published:
        notes.add("updated", f"{updated.isoformat()} is earlier than the date; kept")
    slug = _slug(meta.get("slug"), raw.default_slug, title, raw, notes)
    entry = Entry(
        key=f"{raw.doc_key}#{slug}" if raw.keyed else raw.doc_key,
        doc_key=raw.doc_key,
        title=title,
        slug=slug,
        published=published,
        updated=updated,
        summary=summary.text,
        content_html=content_html,
        categories=_names(meta, ("categories", "category"), notes),
        tags=_names(meta, ("tags", "tag"), notes),
        summary_html=summary.html,
        draft=_draft(meta.get("draft"), notes),
        author=_author(meta.get("author"), notes),
        image=_url(meta.get("image"), "image", site_url, notes),
        image_alt=_text(meta.get("image_alt"), "image_alt", notes),
        reading_time=_reading_time(meta.get("reading_time"), notes),
        url=_url(meta.get("url"), "url", site_url, notes),
        warnings=tuple(notes.items),
    )
    return dataclasses.replace(entry, content_hash=content_hash(entry))


def content_hash(entry: Entry) -> str:
    """sha256 hex of a canonical JSON of every reader-visible field of `entry`."""
    visible = {
        f.name: getattr(entry, f.name)
        for f in dataclasses.fields(entry)
        if f.name not in _NOT_HASHED
    }
    if visible["summary_html"] is None:  # absent: hashes of posts stored before it stay
        del visible["summary_html"]
    canonical = json.dumps(visible, sort_keys=True, ensure_ascii=False, default=_iso)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot hash {type(value).__name__}")


@dataclasses.dataclass(frozen=True, slots=True)
class _Notes:
    """Warnings collected while coercing one post, each naming the file and field."""

    label: str
    items: list[str]

    def add(self, field: str, message: str) -> None:
        self.items.append(f"{self.label}: {field}: {message}")


def _fail(raw: RawPost, field: str, message: str) -> PostError:
    return PostError(raw.skip_key or raw.doc_key, f"{raw.label}: {field}: {message}")


def parse_instant(value: object) -> datetime | None:
    """Aware UTC datetime from a YAML/JSON value (datetime, date, ISO 8601 or RFC 2822 text)."""
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return _parse_text_date(value.strip())
    return None


def _parse_text_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        pass
    try:
        return _utc(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _utc(value: datetime) -> datetime | None:
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def _published(meta: Mapping[str, Any], raw: RawPost) -> datetime:
    key = "date" if "date" in meta else "published"
    value = meta.get(key)
    if value is None or value == "":
        raise _fail(raw, "date", "missing (every post needs a publication date)")
    instant = parse_instant(value)
    if instant is None:
        raise _fail(raw, key, f"cannot parse {_show(value)} as a date")
    return instant


def _optional_date(value: object, field: str, notes: _Notes) -> datetime | None:
    if value is None or value == "":
        return None
    instant = parse_instant(value)
    if instant is None:
        notes.add(field, f"cannot parse {_show(value)} as a date; ignored")
    return instant


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return None


def _text(value: object, field: str, notes: _Notes) -> str | None:
    if value is None:
        return None
    text = _as_text(value)
    if text is None:
        notes.add(field, f"expected text, got {type(value).__name__}; ignored")
        return None
    return clean_line(text) or None


@dataclasses.dataclass(frozen=True, slots=True)
class _Summary:
    """A post's summary: plain text, its HTML when written as Markdown, and where it came from
    (the field's name, or "body")."""

    text: str
    html: str | None
    origin: str


def _summary(meta: Mapping[str, Any], raw: RawPost, content_html: str, site_url: str) -> _Summary:
    """The summary as written (plain text: literal; Markdown: rendered and sanitised; HTML from
    a feed file: its text), else the plain text of the body's first paragraph."""
    field = "summary" if meta.get("summary") else "description"
    value = meta.get(field)
    text = _as_text(value) if value is not None else None
    if text:
        html: str | None = None
        if raw.summary_format == "html":
            summary = plain_text(text)
        elif raw.summary_format == "markdown":
            html = render_inline_markdown(text, site_url) or None
            summary = plain_text(html) if html else ""
        else:
            summary = clean_line(text)
        if summary:
            return _Summary(summary, html, field)
    return _Summary(first_paragraph(content_html), None, "body")


def _title(meta: Mapping[str, Any], summary: _Summary, notes: _Notes, raw: RawPost) -> str:
    value = meta.get("title")
    text = _as_text(value) if value is not None else None
    title = clean_line(text) if text else ""
    if title:
        return title
    derived, origin = summary.text, summary.origin
    if not derived:
        raise _fail(raw, "title", "missing, and no summary or body to derive one from")
    reason = "missing" if value is None else f"empty ({_show(value)})"
    source = "the body's first paragraph" if origin == "body" else f"the {origin}"
    notes.add("title", f"{reason}; derived from {source}")
    return truncate(derived, TITLE_LIMIT)


def is_safe_slug(slug: str) -> bool:
    """True for a slug usable as one URL path segment and file name: no '/', '\\', '..'."""
    return bool(_SAFE_SLUG.fullmatch(slug)) and ".." not in slug


def _slug(value: object, default: str | None, title: str, raw: RawPost, notes: _Notes) -> str:
    given = _as_text(value) if value is not None else None
    if given:
        if is_safe_slug(given):
            return given
        notes.add("slug", f"unsafe slug {_show(given)} replaced")
        return _slugify(given) or _slugify(title) or _hash_slug(raw)
    if default and is_safe_slug(default):
        return default
    return _slugify(default or "") or _slugify(title) or _hash_slug(raw)


def _slugify(text: str) -> str:
    return str(slugify(text, max_length=SLUG_LIMIT, word_boundary=True))


def _hash_slug(raw: RawPost) -> str:
    return "post-" + short_hash(raw.label)


def _names(meta: Mapping[str, Any], keys: tuple[str, ...], notes: _Notes) -> tuple[str, ...]:
    names: list[str] = []
    for key in keys:
        value = meta.get(key)
        items = [value] if isinstance(value, str) else value
        if value is None:
            continue
        if not isinstance(items, list | tuple):
            notes.add(key, f"expected a list or text, got {type(value).__name__}; ignored")
            continue
        for item in items:
            text = _as_text(item)
            if text is None:
                notes.add(key, f"{_show(item)} is not a name; ignored")
            elif not clean_line(text):
                notes.add(key, f"blank name {_show(item)} dropped")
            else:
                names.append(text)
    return unique_names(names)


def _draft(value: object, notes: _Notes) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = _as_text(value)
    word = text.strip().casefold() if text is not None else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    notes.add("draft", f"cannot read {_show(value)} as true/false; treated as a draft")
    return True


def _author(value: object, notes: _Notes) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("name")
    return _text(value, "author", notes)


def _url(value: object, field: str, site_url: str, notes: _Notes) -> str | None:
    text = _text(value, field, notes)
    if text is None:
        return None
    url = absolute_url(text.strip(), site_url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        notes.add(field, f"{_show(text)} is not an http(s) URL; ignored")
        return None
    return url


def _reading_time(value: object, notes: _Notes) -> int | None:
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or not 0 <= number <= 10_000:
        notes.add("reading_time", f"expected minutes as a whole number, got {_show(value)}")
        return None
    return number
