"""Text helpers for sources: decoding bytes (cleaning and cutting live in `feedpipe.model.text`)."""

from __future__ import annotations

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
