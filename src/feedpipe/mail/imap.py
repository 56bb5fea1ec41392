"""Poll an IMAP folder (imap-tools): each message is handed over, then moved to the processed
folder once handled; a crash mid-folder leaves the rest for the next poll (deduplicated)."""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from imap_tools import BaseMailBox, MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from feedpipe.errors import FeedpipeError
from feedpipe.model.hygiene import InboundStatus
from feedpipe.settings import InboundSettings

BATCH = 200  # messages fetched per poll


class InboundError(FeedpipeError):
    """The IMAP server cannot be reached, refuses the login, or lacks the folder."""


@dataclass(frozen=True, slots=True)
class PollReport:
    """What one poll did."""

    seen: int = 0
    processed: int = 0  # moved to the processed folder (duplicates included)
    kept: int = 0  # left in the folder for the operator


def _open(settings: InboundSettings) -> BaseMailBox:
    host, port, timeout = settings.imap_host or "", settings.port, 30
    if settings.tls == "tls":
        return MailBox(host, port, timeout=timeout, ssl_context=ssl.create_default_context())
    if settings.tls == "starttls":
        return MailBoxStartTls(host, port, timeout, ssl.create_default_context())
    return MailBoxUnencrypted(host, port, timeout)


def connect(settings: InboundSettings) -> BaseMailBox:
    """A logged-in mailbox on `[inbound] folder`, the processed folder created if missing."""
    where = f"{settings.imap_host}:{settings.port}"
    if settings.password is None:
        raise InboundError("[inbound] imap_host is set but $FEEDPIPE_IMAP_PASSWORD is not")
    try:
        box = _open(settings)
        box.login(settings.imap_user or "", settings.password.get_secret_value(), None)
        if not box.folder.exists(settings.processed_folder):
            box.folder.create(settings.processed_folder)
        box.folder.set(settings.folder)
    except MailboxLoginError as exc:
        raise InboundError(f"IMAP {where} refused the login of {settings.imap_user!r}") from exc
    except (TimeoutError, OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise InboundError(f"IMAP {where}: {exc}") from exc
    return box


def poll(settings: InboundSettings, handle: Callable[[bytes], InboundStatus]) -> PollReport:
    """Hand each message of the folder to `handle` (oldest first); a message it processed is
    moved to the processed folder, one kept for the operator stays."""
    seen = processed = kept = 0
    box = connect(settings)
    try:
        for uid in box.uids("ALL")[:BATCH]:
            raw = _fetch(box, uid)
            if raw is None:
                continue
            seen += 1
            if handle(raw) is InboundStatus.PROCESSED:
                box.move(uid, settings.processed_folder)
                processed += 1
            else:
                kept += 1
    except (OSError, imaplib.IMAP4.error) as exc:
        raise InboundError(f"IMAP {settings.imap_host}:{settings.port}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            box.logout()
    return PollReport(seen, processed, kept)


def _fetch(box: BaseMailBox, uid: str) -> bytes | None:
    """The message's exact bytes (BODY.PEEK: the \\Seen flag is left alone)."""
    status, data = box.client.uid("FETCH", uid, "(BODY.PEEK[])")
    if status != "OK":
        return None
    parts = [item[1] for item in data if isinstance(item, tuple) and len(item) > 1]
    return bytes(parts[0]) if parts else None
