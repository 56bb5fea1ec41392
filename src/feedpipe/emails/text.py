"""Plain-text helpers for emails: summaries, one-line cleaning, grapheme-aware cutting, wrapping."""

from __future__ import annotations

import html
import re
import textwrap

import nh3

from feedpipe.model.text import clean_line
from feedpipe.model.text import truncate as cut_text

WIDTH = 72
SUMMARY_CHARS = 300
BODY_SCAN_CHARS = 20_000  # an empty summary is derived from at most this much of the body


def truncate(text: str, limit: int, *, words: bool = True) -> str:
    """`text` cut so that it plus "…" fits in `limit` characters, between grapheme clusters
    (a flag, a ZWJ emoji or a letter with its marks stays whole)."""
    return cut_text(text, limit, words=words, min_fraction=2 / 3)


def html_to_text(fragment: str) -> str:
    """Sanitised HTML → its text: tags dropped, entities decoded (for a body, never a summary)."""
    if "<" in fragment or "&" in fragment:
        return html.unescape(nh3.clean(_cut_tag(fragment), tags=set()))
    return fragment


def _cut_tag(text: str) -> str:
    """`text` without a trailing unfinished tag (left by slicing a long body)."""
    last_open = text.rfind("<")
    return text[:last_open] if last_open > text.rfind(">") else text


def summary_text(summary: str, content_html: str, limit: int = SUMMARY_CHARS) -> str:
    """Plain-text summary: the post's summary as written (plain text is never parsed as
    markup, docs/content.md), else the text of the start of its body; never the whole body."""
    if summary.strip():
        return truncate(clean_line(summary), limit)
    return truncate(clean_line(html_to_text(_body_start(content_html))), limit)


def _body_start(content_html: str) -> str:
    """The first block-level text of a body, paragraphs separated by spaces."""
    head = content_html[:BODY_SCAN_CHARS]
    return re.sub(r"</(p|li|h\d|div|blockquote|pre)>", " ", head)


def wrap(text: str, indent: str = "", width: int = WIDTH) -> str:
    """Lines of at most `width` columns; a word longer than that (a URL) stays whole."""
    return textwrap.fill(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
