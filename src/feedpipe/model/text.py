"""The rules of plain-text values: XML-illegal characters removed, one-line folding, and
grapheme-aware shortening (never inside a user-perceived character: flags, ZWJ emoji, marks)."""

from __future__ import annotations

import functools
import html
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import regex

# XML 1.0 forbids C0 controls except \t \n \r, lone surrogates and U+FFFE/U+FFFF; C1 controls
# (except NEL) are legal but never intended in a post, so they go too. The standard `re` scans
# this class twice as fast as `regex`, which is loaded only for grapheme clusters. Written
# `[…][…]*`, not `[…]+`: a pattern that starts with a character class lets `re` skip ahead to
# the next candidate character instead of trying a match at every position (3× faster).
_ILLEGAL_CHAR = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
_ILLEGAL = re.compile(f"{_ILLEGAL_CHAR}{_ILLEGAL_CHAR}*")
ELLIPSIS = "…"
_TRAILING = " ,;:-—–\u200d"


def clean_block(text: str) -> str:
    """Multi-line text: XML-illegal characters removed; tabs and newlines kept."""
    return _ILLEGAL.sub("", text)


def clean_line(text: str) -> str:
    """One-line text: illegal characters removed, line breaks and runs of space → one space."""
    # str.split() splits on exactly the code points `regex`'s \s matches once the illegal ones
    # are gone (checked over all of Unicode in tests/test_content_rules.py), four times faster.
    return " ".join(_ILLEGAL.sub("", text).split())


def html_text(text: str) -> str:
    """Plain text placed in an HTML context: illegal characters removed, then `& < > " '`
    escaped, so a reader shows exactly the characters written (docs/content.md)."""
    return html.escape(clean_block(text), quote=True)


def html_line(text: str) -> str:
    """One-line plain text placed in an HTML context (`clean_line`, then escaped)."""
    return html.escape(clean_line(text), quote=True)


@functools.cache
def _grapheme() -> regex.Pattern[str]:
    import regex

    return regex.compile(r"\X")


def graphemes(text: str) -> list[str]:
    """`text` split into extended grapheme clusters (Unicode UAX #29, the `regex` module's \\X)."""
    return _grapheme().findall(text)


def truncate(text: str, limit: int, *, words: bool = True, min_fraction: float = 0.5) -> str:
    """`text` cut so that it plus "…" fits in `limit` code points, between grapheme clusters,
    at a word boundary when one lies past `min_fraction` of the limit; unchanged if it fits."""
    if len(text) <= limit:
        return text
    budget = max(limit - len(ELLIPSIS), 0)
    kept: list[str] = []
    used = 0
    for cluster in graphemes(text):
        if used + len(cluster) > budget:
            break
        kept.append(cluster)
        used += len(cluster)
    cut = "".join(kept)
    space = cut.rfind(" ")
    if words and space > limit * min_fraction:
        cut = cut[:space]
    return cut.rstrip(_TRAILING) + ELLIPSIS
