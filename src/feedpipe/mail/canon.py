"""DKIM relaxed canonicalisation (RFC 6376 3.4.2, 3.4.4) by whole-buffer C-speed bytes methods."""

from __future__ import annotations

import hashlib

Fields = list[tuple[bytes, bytes]]  # (name, raw value with its folding), in message order
BLOCK = 1024  # bytes per body piece canonicalised (and cached) at once; hashed without
# releasing the GIL (under 2 KB)
SEEN_LIMIT = 2048  # pieces kept (about 4 MB): an edition's, and the personalised ones of
_SEEN: dict[bytes, bytes] = {}  # the last few hundred messages
_CRLF = b"\r\n"


class ParseError(ValueError):
    """The header block is not RFC 5322 fields (dkimpy's parser said why)."""


def relaxed_fields(message: bytes, wanted: frozenset[bytes]) -> tuple[Fields, bytes]:
    """(lower-case name, relaxed field without CRLF) for each field named in `wanted` (lower
    case), in message order, and the body. The CRLF-only header block we generate is
    canonicalised as a whole by bytes methods; anything else goes through dkimpy's parser."""
    end = message.find(b"\r\n\r\n")
    if end >= 0:
        fields = _fast_fields(message[:end], wanted)
        if fields is not None:
            return fields, message[end + 4 :]
    parsed, body = split_message(message)
    return [
        (name.rstrip(b" \t").lower(), relaxed_header(name, value))
        for name, value in parsed
        if name.rstrip(b" \t").lower() in wanted
    ], body


def _fast_fields(head: bytes, wanted: frozenset[bytes]) -> Fields | None:
    """`relaxed_fields` of a CRLF-only block: unfolded and its WSP runs made one SP in a
    few whole-block passes; None if a line is neither a field nor a fold, or on a bare CR/LF."""
    lines = head.count(_CRLF)
    if head.count(b"\n") != lines or head.count(b"\r") != lines or head[:1] in (b" ", b"\t"):
        return None
    flat = _one_space(head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b"\t"))
    fields: Fields = []
    for line in flat.split(_CRLF):
        name, colon, value = line.partition(b":")
        name = name.rstrip(b" ")
        if not colon or not name or b" " in name:
            return None
        lower = name.lower()
        if lower in wanted:
            fields.append((lower, lower + b":" + value.strip(b" ")))
    return fields


def split_message(message: bytes) -> tuple[Fields, bytes]:
    """(header fields, body) by dkimpy's parser (the raw fields, for any message)."""
    import dkim  # type: ignore[import-untyped]  # only for what we do not generate

    try:
        headers, body = dkim.rfc822_parse(message)
    except dkim.DKIMException as exc:
        raise ParseError(str(exc)) from exc
    return [(name, value.rstrip(b"\r\n")) for name, value in headers], body


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """One field, relaxed (lower-case name, unfolded, WSP runs as one SP, trimmed), no CRLF."""
    value = _one_space(value.replace(b"\r\n", b"")).strip(b" ")
    return name.rstrip(b" \t").lower() + b":" + value


def body_hash(body: bytes, block: int = BLOCK) -> bytes:
    """SHA-256 of the relaxed body, fed piece by piece (see `relaxed_pieces`)."""
    hasher = hashlib.sha256()
    for piece in relaxed_pieces(body, block):
        hasher.update(piece)
    return hasher.digest()


def relaxed_body(body: bytes, block: int = BLOCK) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalisation."""
    return b"".join(relaxed_pieces(body, block))


def relaxed_pieces(body: bytes, block: int = BLOCK) -> list[bytes]:
    """The relaxed body in pieces; a body with a bare CR or LF goes through dkimpy's per-line
    version (one piece).

    The body is cut after a CRLF every `block` bytes or so and each piece canonicalised on
    its own (no whitespace run or line crosses a cut), through a cache: the messages of an
    edition differ only near their few personalised places, so most pieces were seen before.
    """
    pieces: list[bytes] = []
    seen, find, start, size = _SEEN, body.find, 0, len(body)
    while start < size:
        end = find(_CRLF, start + block)
        end = size if end < 0 else end + 2
        piece = body[start:end]
        canonical = seen.get(piece)
        if canonical is None:
            canonical = _relaxed_lines(piece)
            if canonical is None:
                return [_dkimpy_body(body)]
            if len(seen) >= SEEN_LIMIT:
                seen.clear()  # the pieces in use come back with the next message
            seen[piece] = canonical
        pieces.append(canonical)
        start = end
    return _without_blank_end(pieces)


def _dkimpy_body(body: bytes) -> bytes:
    """dkimpy's per-line relaxed body (for a body with a bare CR or LF)."""
    from dkim.canonicalization import CanonicalizationPolicy  # type: ignore[import-untyped]

    relaxed: bytes = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed").canonicalize_body(body)
    return relaxed


def _without_blank_end(pieces: list[bytes]) -> list[bytes]:
    """The pieces without the empty lines at the end, ending in one CRLF (nothing if empty).
    Only whole CRLF pairs are there: a canonical piece has no bare CR or LF."""
    while pieces and not pieces[-1].rstrip(_CRLF):
        pieces.pop()
    if pieces:
        last = pieces[-1]
        if not last.endswith(_CRLF) or last.endswith(b"\r\n\r\n"):
            pieces[-1] = last.rstrip(_CRLF) + _CRLF
    return pieces


def _relaxed_lines(piece: bytes) -> bytes | None:
    """WSP runs as one SP, none before a CRLF (a last line without CRLF keeps its trailing
    space, as dkimpy and OpenDKIM do); None if `piece` has a bare CR or LF."""
    crlf = piece.count(_CRLF)
    if piece.count(b"\n") != crlf or piece.count(b"\r") != crlf:
        return None
    return _one_space(piece).replace(b" \r\n", _CRLF)


def _one_space(data: bytes) -> bytes:
    """Every run of spaces and tabs as a single space (each pass halves the runs)."""
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    return data
