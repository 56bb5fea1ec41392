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


# Bytes that begin the UTF-8 of an illegal character: C0 controls but TAB, LF and CR; DEL;
# C1 controls (U+0080–U+009F are C2 80–C2 9F); U+FFFE and U+FFFF (EF BF BE / EF BF BF).
_C0_DEL = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
# From this length a look at the UTF-8 bytes is quicker than the regex (prose is rarely ASCII,
# and `re` is slow over wider strings); below it, encoding costs more than it saves.
_BYTES_FIRST = 1024


def clean_utf8(data: bytes) -> bool:
    """True when UTF-8 `data` surely holds no illegal character (False may be wrong: it
    stands for any of U+0080–U+00BF)."""
    return (
        len(data.translate(None, _C0_DEL)) == len(data)
        and b"\xc2" not in data
        and b"\xef\xbf\xbe" not in data
        and b"\xef\xbf\xbf" not in data
    )


def surely_clean(text: str) -> bool:
    """True when `text` surely holds no illegal character, by its UTF-8 bytes."""
    try:
        return clean_utf8(text.encode())
    except UnicodeEncodeError:  # a lone surrogate
        return False


def clean_block(text: str) -> str:
    """Multi-line text: XML-illegal characters removed; tabs and newlines kept."""
    if len(text) >= _BYTES_FIRST and surely_clean(text):
        return text
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
