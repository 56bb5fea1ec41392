"""DKIM signing (relaxed/relaxed): rsa-sha256 and ed25519-sha256 (RFC 8463), keys by OpenSSL."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from feedpipe.errors import ConfigError, FeedpipeError
from feedpipe.mail.canon import ParseError, body_hash, relaxed_fields, relaxed_header

if TYPE_CHECKING:  # the signing processes (mail/signproc.py) load no settings
    from feedpipe.settings import EmailSettings

# Signed when present, in this order; From is signed once more than it occurs (oversigned), so
# that nobody can add a second From and keep the signature valid. RFC 8058 needs both
# List-Unsubscribe headers covered.
SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
    b"Feedback-ID",
)
OVERSIGNED = (b"from",)
_SIGNED = tuple(name.lower() for name in SIGNED_HEADERS)
_WANTED = frozenset(_SIGNED)
_H_LISTS: dict[tuple[bytes, ...], bytes] = {}
CANONICALIZE = b"relaxed/relaxed"
MIN_RSA_BITS = 1024
PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_PKCS1 = padding.PKCS1v15()
_PREHASHED = utils.Prehashed(hashes.SHA256())


class SigningError(FeedpipeError):
    """A message could not be signed (it is sent nowhere; the envelope is RETRY)."""


def load_key(pem: bytes, origin: str) -> PrivateKey:
    """The RSA (>= 1024 bits) or Ed25519 private key in `pem` (PKCS#1 or PKCS#8); ConfigError
    naming `origin` if unusable."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"{origin}: not a usable DKIM key (RSA or Ed25519): {exc}") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(f"{origin}: RSA key of {key.key_size} bits, at least 1024")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ConfigError(
        f"{origin}: not a usable DKIM key (RSA or Ed25519; found {type(key).__name__})"
    )


@dataclass(frozen=True, slots=True)
class DkimKey:
    """One selector and its private key, loaded and parsed once per process."""

    selector: bytes
    private: PrivateKey

    @classmethod
    def read(cls, selector: str, path: Path, origin: str) -> DkimKey:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{origin}: cannot read {path}: {exc.strerror}") from exc
        return cls(selector.encode(), load_key(pem, origin))

    @property
    def is_rsa(self) -> bool:
        return isinstance(self.private, rsa.RSAPrivateKey)

    @property
    def algorithm(self) -> bytes:
        return b"rsa-sha256" if self.is_rsa else b"ed25519-sha256"

    def describe(self) -> str:
        """E.g. "rsa-sha256, 2048-bit key"."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            return f"rsa-sha256, {self.private.key_size}-bit key"
        return "ed25519-sha256 key"

    def sign_digest(self, digest: bytes) -> bytes:
        """The signature of a SHA-256 header hash (RSA PKCS#1 v1.5; PureEdDSA over the
        hash for Ed25519, RFC 8463 section 3)."""
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(digest, _PKCS1, _PREHASHED)
        return self.private.sign(digest)

    def verify_digest(self, digest: bytes, signature: bytes) -> None:
        """SigningError unless `signature` is this key's signature of `digest`."""
        public = self.private.public_key()
        try:
            if isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, digest, _PKCS1, _PREHASHED)
            else:
                public.verify(signature, digest)
        except InvalidSignature as exc:
            raise SigningError(f"DKIM signing failed: a wrong {self.describe()} signature") from exc

    def record(self) -> str:
        """The DNS TXT record value that publishes the public key."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            der = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return "v=DKIM1; k=ed25519; p=" + base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs messages for one domain with one or more keys (one DKIM-Signature each, the
    first key's on top)."""

    domain: bytes
    keys: tuple[DkimKey, ...]
    clock: Callable[[], float] = time.time  # the `t=` tag

    @classmethod
    def from_settings(cls, email: EmailSettings) -> DkimSigner | None:
        """A signer when `dkim_key_path`, `dkim_selector` and `dkim_domain` are all set, with
        the Ed25519 key as a second signature when `dkim_ed25519_*` are set too."""
        parts = (email.dkim_key_path, email.dkim_selector, email.dkim_domain)
        extra = (email.dkim_ed25519_key_path, email.dkim_ed25519_selector)
        if not any(parts) and not any(extra):
            return None
        if not all(parts) or email.dkim_key_path is None or email.dkim_selector is None:
            raise ConfigError(
                "[email] dkim_key_path, dkim_selector and dkim_domain go together: set all three"
            )
        keys = [DkimKey.read(email.dkim_selector, email.dkim_key_path, "[email] dkim_key_path")]
        if any(extra):
            keys.append(_ed25519_key(email))
        signer = cls(str(email.dkim_domain).encode(), tuple(keys))
        signer.check()
        return signer

    def check(self) -> None:
        """ConfigError unless every key can sign (tried once, on a tiny message)."""
        try:
            self.sign(b"From: a@example.org\r\nSubject: check\r\n\r\nbody\r\n")
        except SigningError as exc:
            raise ConfigError(f"[email] dkim_key_path: cannot sign: {exc}") from exc

    def record_name(self, key: DkimKey) -> str:
        return f"{key.selector.decode()}._domainkey.{self.domain.decode()}"

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header(s) in front."""
        return self.fields(message) + message

    def fields(self, message: bytes, when: float | None = None) -> bytes:
        """The DKIM-Signature field(s) for `message`, signed at `when` (default: the clock)."""
        prepared = self.prepare(message, when)
        signatures = [k.sign_digest(d) for k, d in zip(self.keys, prepared.digests, strict=True)]
        return prepared.fields(signatures)

    def prepare(self, message: bytes, when: float | None = None) -> Prepared:
        """Everything but the private-key step: per key, the DKIM-Signature value up to `b=`
        and the SHA-256 header hash to sign."""
        try:
            fields, body = relaxed_fields(message, _WANTED)
        except ParseError as exc:
            raise SigningError(f"DKIM signing failed: {exc}") from exc
        found: dict[bytes, list[bytes]] = {}
        for name, relaxed in fields:
            found.setdefault(name, []).append(relaxed + b"\r\n")
        if b"from" not in found:
            raise SigningError("DKIM signing failed: the message has no From header")
        include = tuple(name for name in _SIGNED for _ in found.get(name, ()))
        include += tuple(name for name in OVERSIGNED if name in found)
        # the last instance first (RFC 6376 5.4.2); an oversigned name with none left hashes
        # as nothing
        signed = b"".join([found[name].pop() for name in include if found[name]])
        common = b"c=%s; d=%s; t=%d;\r\n\th=%s;\r\n\tbh=%s;\r\n\tb=" % (
            CANONICALIZE,
            self.domain,
            int(self.clock() if when is None else when),
            _h_list(include),
            base64.b64encode(body_hash(body)),
        )
        values = tuple(
            b"v=1; a=%s; s=%s; %s" % (k.algorithm, k.selector, common) for k in self.keys
        )
        digests = tuple(
            hashlib.sha256(signed + relaxed_header(b"DKIM-Signature", value)).digest()
            for value in values
        )
        return Prepared(values, digests)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One message's signatures but for the private-key step: per key, the DKIM-Signature
    value up to `b=` and the header hash (32 bytes) that key signs."""

    values: tuple[bytes, ...]
    digests: tuple[bytes, ...]

    def fields(self, signatures: Sequence[bytes]) -> bytes:
        """The DKIM-Signature fields (first key's on top), to put in front of the message."""
        return b"".join(_field(v, s) for v, s in zip(self.values, signatures, strict=True))


def _field(unsigned: bytes, signature: bytes) -> bytes:
    """One DKIM-Signature field, with its CRLF."""
    return b"DKIM-Signature: " + unsigned + _fold_b64(base64.b64encode(signature)) + b"\r\n"


def _ed25519_key(email: EmailSettings) -> DkimKey:
    origin = "[email] dkim_ed25519_key_path"
    if email.dkim_ed25519_key_path is None or not email.dkim_ed25519_selector:
        raise ConfigError(
            "[email] dkim_ed25519_key_path and dkim_ed25519_selector go together: set both"
        )
    key = DkimKey.read(email.dkim_ed25519_selector, email.dkim_ed25519_key_path, origin)
    if not isinstance(key.private, ed25519.Ed25519PrivateKey):
        raise ConfigError(f"{origin}: not an Ed25519 key (found {key.describe()})")
    return key


def _h_list(names: tuple[bytes, ...]) -> bytes:
    """`_fold_list`, once per distinct list (every message of an edition has the same)."""
    folded = _H_LISTS.get(names)
    if folded is None:
        folded = _H_LISTS[names] = _fold_list(names)
    return folded


def _fold_list(names: tuple[bytes, ...], width: int = 64) -> bytes:
    """The h= list, folded after a colon (FWS around colons is allowed, RFC 6376 3.5)."""
    lines: list[bytes] = []
    line = b""
    for n in names:
        if line and len(line) + len(n) > width:
            lines.append(line)
            line = b""
        line += n + b":"
    lines.append(line)
    return b"\r\n\t".join(lines)[:-1]


def _fold_b64(data: bytes, width: int = 72) -> bytes:
    """The b= value folded onto continuation lines (FWS inside b= is allowed, RFC 6376 3.5)."""
    return b"\r\n\t".join(data[i : i + width] for i in range(0, len(data), width))
