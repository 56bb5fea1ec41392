"""Mail transports: SMTP (pooled, pipelined, rate-limited), .eml files, and in-memory for tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from feedpipe.mail.files import FileTransport
from feedpipe.mail.memory import MemoryTransport
from feedpipe.mail.model import Delivery, Envelope, Halt, Outcome, Stage, Transport
from feedpipe.mail.rate import RateLimiter
from feedpipe.mail.replies import classify, enhanced_code, fix_for
from feedpipe.mail.signing import DkimSigner
from feedpipe.mail.smtp import SmtpTransport
from feedpipe.settings import Settings

TRANSPORTS: Mapping[str, Callable[[Settings], Transport]] = MappingProxyType(
    {"outbox": FileTransport.from_settings, "smtp": SmtpTransport.from_settings}
)


def open_transport(settings: Settings) -> Transport:
    """The transport `[email] transport` names (ConfigError for a bad DKIM or AUTH setup)."""
    return TRANSPORTS[settings.email.transport](settings)


__all__ = [
    "TRANSPORTS",
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
