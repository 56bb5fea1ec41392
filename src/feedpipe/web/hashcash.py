"""`[web] subscribe_proof_of_work`: a small hashcash the subscribe form's script solves.

A challenge is `bits:issued:random:mac` (mac = HMAC of the rest with the site's token key); a
solution is a nonce such that SHA-256(`challenge:nonce`) starts with `bits` zero bits. The
server checks the mac (constant time), the age, the bits and that the challenge is unused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from feedpipe.errors import ValidationError

MAX_AGE_SECONDS = 3600  # a form older than this asks for a reload
MAX_NONCE_CHARS = 32


class ProofOfWorkError(ValidationError):
    """A missing, forged, stale, reused or wrong proof of work."""


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, b"feedpipe.pow\0" + body.encode(), hashlib.sha256).hexdigest()[:32]


def challenge(key: bytes, bits: int, now: int) -> str:
    """A fresh challenge for `bits` zero bits, issued at `now` (Unix seconds)."""
    body = f"{bits}:{now}:{secrets.token_hex(8)}"
    return f"{body}:{_mac(key, body)}"


def leading_zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def solve(stamp: str, bits: int) -> str:
    """A nonce that solves `stamp` (what the form's script does; tests and API clients)."""
    nonce = 0
    while leading_zero_bits(hashlib.sha256(f"{stamp}:{nonce}".encode()).digest()) < bits:
        nonce += 1
    return str(nonce)


def verify(key: bytes, bits: int, stamp: str, nonce: str, now: int) -> None:
    """Raise ProofOfWorkError unless `nonce` solves a genuine, fresh `stamp` for `bits`."""
    parts = stamp.split(":")
    if len(parts) != 4 or not nonce or len(nonce) > MAX_NONCE_CHARS:
        raise ProofOfWorkError("the form's check is missing: reload the page (JavaScript needed)")
    body = ":".join(parts[:3])
    if not hmac.compare_digest(_mac(key, body), parts[3]):
        raise ProofOfWorkError("the form's check is not valid: reload the page")
    if parts[0] != str(bits) or not parts[1].isdigit():
        raise ProofOfWorkError("the form's check is out of date: reload the page")
    if not 0 <= now - int(parts[1]) <= MAX_AGE_SECONDS:
        raise ProofOfWorkError("the form's check has expired: reload the page")
    digest = hashlib.sha256(f"{stamp}:{nonce}".encode()).digest()
    if leading_zero_bits(digest) < bits:
        raise ProofOfWorkError("the form's check was not solved: reload the page")
