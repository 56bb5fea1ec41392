"""Signed, time-limited subscriber tokens (itsdangerous) and the links that carry them.

Tokens are `URLSafeTimedSerializer` tokens: the subscriber id, a timestamp and an HMAC, with
one salt per purpose so an unsubscribe token never works as a preferences or confirm token.
The key is $FEEDPIPE_SECRET_KEY; without it, `token_secret` generates a random key once and
keeps it in the store's `meta` table (key "token_secret") so links keep working across runs.
Anyone who can read the database can then forge tokens: set the variable in production.
Changing the key invalidates every link already sent.
"""

from __future__ import annotations

import binascii
import enum
import hmac
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes, want_bytes

from feedpipe.errors import ValidationError
from feedpipe.store import MetaStore

META_KEY = "token_secret"


class TokenPurpose(enum.StrEnum):
    """What a token may be used for; each has its own salt."""

    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    CONFIRM = "confirm"


class InvalidTokenError(ValidationError):
    """A token was forged, altered, made for another purpose, or has expired."""


class ExpiredTokenError(InvalidTokenError):
    """A token that was valid, but is older than its purpose allows."""


class SecretSettings(Protocol):
    """The part of Settings tokens need."""

    @property
    def secret_key(self) -> Any: ...  # SecretStr | None


class _ClockSigner(TimestampSigner):
    """A TimestampSigner with an injectable clock (epoch seconds) that derives its HMAC key once.

    Signatures are byte-for-byte those of the stock HMAC signer: stock itsdangerous reads them.
    """

    def __init__(self, *args: Any, now: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now
        self._mac = hmac.new(self.derive_key(), digestmod=self.digest_method)

    def get_timestamp(self) -> int:
        return super().get_timestamp() if self._now is None else self._now

    def get_signature(self, value: str | bytes) -> bytes:
        mac = self._mac.copy()
        mac.update(want_bytes(value))
        return base64_encode(mac.digest())


def max_age(purpose: TokenPurpose) -> timedelta:
    """How long links stay valid: confirm links a week, the others a year."""
    return timedelta(days=7) if purpose is TokenPurpose.CONFIRM else timedelta(days=365)


def _serializer(secret: str | bytes, now: datetime | None) -> URLSafeTimedSerializer:
    stamp = None if now is None else int(now.timestamp())
    return URLSafeTimedSerializer(secret, signer=_ClockSigner, signer_kwargs={"now": stamp})


def _salt(purpose: TokenPurpose) -> str:
    return f"feedpipe.{purpose.value}"


_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> bytes:
    """itsdangerous' `base64_encode` (URL-safe, unpadded) without its Python-level layers."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


class _Mac:
    """HMAC (RFC 2104) with both padded key blocks hashed once: a MAC is two hash copies,
    a third of `hmac`'s cost per call on OpenSSL 3 (same bytes as `hmac.digest`)."""

    def __init__(self, key: bytes, digest: Callable[..., Any]) -> None:
        inner, outer = digest(), digest()
        if len(key) > inner.block_size:
            key = digest(key).digest()
        key = key.ljust(inner.block_size, b"\0")
        inner.update(bytes(b ^ 0x36 for b in key))
        outer.update(bytes(b ^ 0x5C for b in key))
        self._inner, self._outer = inner, outer

    def __call__(self, message: bytes) -> bytes:
        inner, outer = self._inner.copy(), self._outer.copy()
        inner.update(message)
        outer.update(inner.digest())
        return bytes(outer.digest())


class TokenMaker:
    """Makes many tokens fast: each purpose's key derived and padded once. The tokens are
    byte for byte those of itsdangerous' URLSafeTimedSerializer (`dumps`, which never
    compresses an id below 10**12): stock itsdangerous and `read_token` read them."""

    def __init__(self, secret: str | bytes, now: datetime | None = None) -> None:
        serializer = _serializer(secret, now)
        signers = {p: serializer.make_signer(_salt(p)) for p in TokenPurpose}
        self._macs = {p: _Mac(s.derive_key(), s.digest_method) for p, s in signers.items()}
        self._sep = want_bytes(signers[TokenPurpose.UNSUBSCRIBE].sep)
        self._stamp = None if now is None else self._stamped(int(now.timestamp()))

    def make(self, purpose: TokenPurpose, subscriber_id: int) -> str:
        return self.make_each((purpose,), subscriber_id)[0]

    def make_each(self, purposes: Sequence[TokenPurpose], subscriber_id: int) -> list[str]:
        """One token per purpose for one subscriber (their signed value is the same)."""
        # What dump_payload gives for an int (JSON digits, too short to compress), then what
        # TimestampSigner.sign appends: the timestamp and the HMAC of everything before it.
        stamp = self._stamped(int(time.time())) if self._stamp is None else self._stamp
        value = _b64(str(int(subscriber_id)).encode("ascii")) + stamp
        signed = value + self._sep
        return [(signed + _b64(self._macs[p](value))).decode("ascii") for p in purposes]

    def _stamped(self, seconds: int) -> bytes:
        return self._sep + _b64(int_to_bytes(seconds))


def make_token(
    secret: str | bytes, purpose: TokenPurpose, subscriber_id: int, now: datetime | None = None
) -> str:
    """A URL-safe token naming `subscriber_id` for `purpose`, stamped `now` (default: real time)."""
    return TokenMaker(secret, now).make(purpose, subscriber_id)


def read_token(
    secret: str | bytes,
    purpose: TokenPurpose,
    token: str,
    max_age: timedelta,
    now: datetime | None = None,
) -> int:
    """The subscriber id in `token`; InvalidTokenError when forged, altered, expired or foreign."""
    serializer = _serializer(secret, now)
    seconds = int(max_age.total_seconds())
    try:
        value = serializer.loads(token, salt=_salt(purpose), max_age=seconds)
    except SignatureExpired:
        raise ExpiredTokenError("this link has expired; ask for a new one") from None
    except (BadSignature, ValueError, TypeError):
        raise InvalidTokenError("this link is not valid") from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidTokenError("this link is not valid")
    return value


def token_secret(settings: SecretSettings, store: MetaStore) -> str:
    """$FEEDPIPE_SECRET_KEY, else a random key generated once and kept in the store."""
    if settings.secret_key is not None:
        return str(settings.secret_key.get_secret_value())
    return store.meta_setdefault(META_KEY)


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/u/{token}"


def preferences_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/p/{token}"


def confirm_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/c/{token}"
