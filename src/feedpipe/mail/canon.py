"""DKIM relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4) by whole-buffer C-speed bytes methods."""

from __future__ import annotations

import dkim  # type: ignore[import-untyped]
from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]

Fields = list[tuple[bytes, bytes]]  # (name, raw value with its folding), in message order
RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
BLOCK = 512  # bytes per body piece canonicalised (and cached) at once
SEEN_LIMIT = 4096  # pieces kept (about 4 MB)
_SEEN: dict[bytes, bytes] = {}


class ParseError(ValueError):
    """The header block is not RFC 5322 fields (dkimpy's parser said why)."""


def split_message(message: bytes) -> tuple[Fields, bytes]:
    """(header fields, body). The header block we generate (CRLF lines, no bare CR or LF) is
    split by bytes methods; anything else goes through dkimpy's parser."""
    end = message.find(b"\r\n\r\n")
    if end >= 0:
        head = message[:end]
        lines = head.count(b"\r\n")
        if head.count(b"\n") == lines and head.count(b"\r") == lines:
            fields = _crlf_fields(head)
            if fields is not None:
                return fields, message[end + 4 :]
    try:
        headers, body = dkim.rfc822_parse(message)
    except dkim.DKIMException as exc:
        raise ParseError(str(exc)) from exc
    return [(name, value.rstrip(b"\r\n")) for name, value in headers], body


def _crlf_fields(head: bytes) -> Fields | None:
    """The fields of a CRLF-only header block; None if a line is neither a field nor a fold."""
    fields: Fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not fields:
                return None
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or b" " in name.rstrip(b" \t"):
            return None
        fields.append((name, value))
    return fields


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """One field, relaxed (lower-case name, unfolded, WSP runs as one SP, trimmed), no CRLF."""
    value = _one_space(value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value


def relaxed_body(body: bytes, block: int = BLOCK) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalisation; a body with bare CR or LF goes through
    dkimpy's per-line version.

    The body is cut after a CRLF every `block` bytes or so and each piece canonicalised on
    its own (no whitespace run or line crosses a cut), through a cache: the messages of an
    edition differ only near their few personalised places, so most pieces are seen before.
    """
    pieces = []
    start, size = 0, len(body)
    while start < size:
        end = body.find(b"\r\n", start + block)
        end = size if end < 0 else end + 2
        piece = body[start:end]
        canonical = _SEEN.get(piece)
        if canonical is None:
            canonical = _relaxed_lines(piece)
            if canonical is None:
                relaxed: bytes = RELAXED.canonicalize_body(body)
                return relaxed
            if len(_SEEN) >= SEEN_LIMIT:
                _SEEN.clear()  # the pieces in use come back with the next message
            _SEEN[piece] = canonical
        pieces.append(canonical)
        start = end
    joined = b"".join(pieces).rstrip(b"\r\n")  # only CRLF pairs here: whole empty lines go
    return joined + b"\r\n" if joined else b""


def _relaxed_lines(piece: bytes) -> bytes | None:
    """WSP runs as one SP, none before a CRLF (a last line without CRLF keeps its trailing
    space, as dkimpy and OpenDKIM do); None if `piece` has a bare CR or LF."""
    crlf = piece.count(b"\r\n")
    if piece.count(b"\n") != crlf or piece.count(b"\r") != crlf:
        return None
    return _one_space(piece).replace(b" \r\n", b"\r\n")


def _one_space(data: bytes) -> bytes:
    """Every run of spaces and tabs as a single space (each pass halves the runs)."""
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data
