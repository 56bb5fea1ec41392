"""Plain-text helpers for emails: markup-free summaries, one-line cleaning, 72-column wrapping."""

from __future__ import annotations

import html
import re
import textwrap
import unicodedata

import nh3

WIDTH = 72
SUMMARY_CHARS = 300
BODY_SCAN_CHARS = 20_000  # an empty summary is derived from at most this much of the body
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff]")
_SPACES = re.compile(r"\s+")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1|`([^`]+)`")
_MD_SINGLE = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])")
_TRAILING = " ,;:-—–"


def one_line(text: str) -> str:
    """Control characters (CR, LF, tabs, C1, separators) removed, whitespace runs → one space."""
    return _SPACES.sub(" ", _CONTROLS.sub(" ", text)).strip()


def truncate(text: str, limit: int, *, words: bool = True) -> str:
    """`text` cut so that it plus "…" fits in `limit` characters, never inside a code point."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if words and space > limit * 2 // 3:
        cut = cut[:space]
    while cut and _dangling(cut[-1]):
        cut = cut[:-1]
    return cut.rstrip(_TRAILING) + "…"


def _dangling(char: str) -> bool:
    """A code point that only makes sense attached to the one after or before it."""
    return (
        unicodedata.combining(char) > 0
        or char in "\u200d\ufe0e\ufe0f"
        or 0xD800 <= ord(char) <= 0xDFFF
        or 0x1F3FB <= ord(char) <= 0x1F3FF
    )


def strip_markup(text: str) -> str:
    """HTML tags dropped, entities decoded, inline Markdown (links, emphasis, code) unwrapped."""
    if "<" in text or "&" in text:
        text = html.unescape(nh3.clean(_cut_tag(text), tags=set()))
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_EMPHASIS.sub(lambda m: m.group(2) or m.group(3) or "", text)
    return _MD_SINGLE.sub(r"\1", text)


def _cut_tag(text: str) -> str:
    """`text` without a trailing unfinished tag (left by slicing a long body)."""
    last_open = text.rfind("<")
    return text[:last_open] if last_open > text.rfind(">") else text


def summary_text(summary: str, content_html: str, limit: int = SUMMARY_CHARS) -> str:
    """Plain-text summary: the post's summary, else the start of its body; never the whole body."""
    source = summary if summary.strip() else _body_start(content_html)
    return truncate(one_line(strip_markup(source[:BODY_SCAN_CHARS])), limit)


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
