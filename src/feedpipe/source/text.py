"""Text helpers for sources: decoding bytes, removing XML-illegal characters, truncating."""

from __future__ import annotations

import re

# XML 1.0 forbids C0 controls except \t \n \r, lone surrogates and U+FFFE/U+FFFF; C1 controls
# (except NEL) are legal but never intended in a post, so they go too.
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]+")
_LINE_BREAKS = re.compile(r"\s+")
_BOM = "\ufeff"


def decode(data: bytes) -> tuple[str, str | None]:
    """UTF-8 (BOM stripped) else cp1252 (else Latin-1), CRLF/CR → LF; returns (text, warning)."""
    warning = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        warning = f"not UTF-8 (byte {exc.start}); decoded as cp1252"
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    text = text.removeprefix(_BOM)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text, warning


def clean_block(text: str) -> str:
    """Body text: XML-illegal characters removed; tabs and newlines kept."""
    return _ILLEGAL.sub("", text)


def clean_line(text: str) -> str:
    """Title/summary text: illegal characters removed, line breaks and runs of space → one space."""
    return _LINE_BREAKS.sub(" ", _ILLEGAL.sub("", text)).strip()


def truncate_words(text: str, limit: int) -> str:
    """`text` cut at a word boundary so that it, plus an ellipsis, fits in `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—–") + "…"
