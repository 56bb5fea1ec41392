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


def describe_setup(settings: Settings) -> list[str]:
    """What `feedpipe check-config` says about delivery; loads the DKIM key (ConfigError if it
    cannot sign)."""
    email = settings.email
    lines = [f"email:  {email.transport} from {email.from_address}"]
    if email.transport == "smtp":
        smtp = email.smtp
        lines.append(f"smtp:   {smtp.host}:{smtp.port} ({smtp.security}), HELO {email.helo_name}")
    signer = DkimSigner.from_settings(email)
    if signer is not None:
        bits = signer.private.key_size
        lines.append(f"dkim:   rsa-sha256, {bits}-bit key, publish TXT at {signer.record_name}")
    return lines


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
    "describe_setup",
    "enhanced_code",
    "fix_for",
    "open_transport",
]
