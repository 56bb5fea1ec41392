"""DKIM signing (dkimpy, rsa-sha256, relaxed/relaxed) of each message before it leaves."""

from __future__ import annotations

from dataclasses import dataclass

import dkim  # type: ignore[import-untyped]

from feedpipe.errors import ConfigError, FeedpipeError
from feedpipe.settings import EmailSettings

SIGNED_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
)
CANONICALIZE = (b"relaxed", b"relaxed")


class SigningError(FeedpipeError):
    """dkimpy could not sign a message (it is sent nowhere; the envelope is RETRY)."""


@dataclass(frozen=True, slots=True)
class DkimSigner:
    """Signs messages for one domain and selector with one private key (PEM)."""

    selector: bytes
    domain: bytes
    key: bytes

    @classmethod
    def from_settings(cls, email: EmailSettings) -> DkimSigner | None:
        """A signer when `dkim_key_path`, `dkim_selector` and `dkim_domain` are all set."""
        parts = (email.dkim_key_path, email.dkim_selector, email.dkim_domain)
        if not any(parts):
            return None
        if not all(parts) or email.dkim_key_path is None:
            raise ConfigError(
                "[email] dkim_key_path, dkim_selector and dkim_domain go together: set all three"
            )
        try:
            key = email.dkim_key_path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"[email] dkim_key_path: cannot read {email.dkim_key_path}: {exc.strerror}"
            ) from exc
        signer = cls(str(email.dkim_selector).encode(), str(email.dkim_domain).encode(), key)
        signer.check()
        return signer

    def check(self) -> None:
        """ConfigError unless the key can sign (tried once, on a tiny message)."""
        try:
            self.sign(b"From: a@example.org\r\nSubject: check\r\n\r\nbody\r\n")
        except SigningError as exc:
            raise ConfigError(f"[email] dkim_key_path: not a usable RSA key: {exc}") from exc

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        try:
            header: bytes = dkim.sign(
                message,
                self.selector,
                self.domain,
                self.key,
                canonicalize=CANONICALIZE,
                include_headers=list(SIGNED_HEADERS),
            )
        except dkim.DKIMException as exc:
            raise SigningError(f"DKIM signing failed: {exc}") from exc
        return header + message
