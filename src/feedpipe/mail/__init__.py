"""Mail transports: SMTP (pooled, pipelined, rate-limited), .eml files, and in-memory for tests."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from feedpipe.mail.memory import MemoryTransport
from feedpipe.mail.model import Delivery, Envelope, Halt, Outcome, Stage, Transport
from feedpipe.mail.rate import RateLimiter
from feedpipe.mail.replies import classify, enhanced_code, fix_for

if TYPE_CHECKING:
    from feedpipe.mail.files import FileTransport
    from feedpipe.mail.signing import DkimSigner
    from feedpipe.mail.smtp import SmtpTransport
    from feedpipe.settings import Settings

# The SMTP client (aiosmtplib) and the DKIM signer load when first used (PEP 562), so that
# what only reads the outbox (`feedpipe status`, a send with nothing due) does not pay for them.
_LAZY = {
    "FileTransport": "feedpipe.mail.files",
    "DkimSigner": "feedpipe.mail.signing",
    "SmtpTransport": "feedpipe.mail.smtp",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'feedpipe.mail' has no attribute {name!r}")


def open_transport(settings: Settings) -> Transport:
    """The transport `[email] transport` names (ConfigError for a bad DKIM or AUTH setup)."""
    if settings.email.transport == "smtp":
        from feedpipe.mail.smtp import SmtpTransport

        return SmtpTransport.from_settings(settings)
    from feedpipe.mail.files import FileTransport

    return FileTransport.from_settings(settings)


__all__ = [
    "Delivery",
    "DkimSigner",
    "Envelope",
    "FileTransport",
    "Halt",
    "MemoryTransport",
    "Outcome",
    "RateLimiter",
    "SmtpTransport",
    "Stage",
    "Transport",
    "classify",
    "enhanced_code",
    "fix_for",
    "open_transport",
]
