"""The "outbox" transport: each message becomes one .eml file, written atomically."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from feedpipe.mail.model import Delivery, Envelope, Halt, Outcome, Ready, Take, retry, unsent
from feedpipe.mail.rate import RateLimiter
from feedpipe.mail.signing import DkimSigner, SigningError
from feedpipe.settings import Settings

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<?([^\r\n>]*)>?", re.IGNORECASE | re.MULTILINE)
_UNSAFE = re.compile(rb"[^A-Za-z0-9._@+=-]")
MAX_ID_CHARS = 120


def message_id_slug(data: bytes) -> str:
    """The message's Message-ID reduced to characters safe in a file name."""
    end = data.find(b"\r\n\r\n")
    match = _MESSAGE_ID.search(data[: end if end >= 0 else len(data)])
    slug = _UNSAFE.sub(b"_", match[1].strip()) if match else b""
    return slug[:MAX_ID_CHARS].decode("ascii") or "no-message-id"


def file_name(envelope: Envelope) -> str:
    """`<outbox_id>-<sanitised message id>.eml`: the same on every resend."""
    return f"{envelope.outbox_id}-{message_id_slug(envelope.data)}.eml"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over `path`."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def sync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileTransport:
    """Writes `<outbox_dir>/<outbox_id>-<message id>.eml`; a resend replaces the same file.

    Each file takes one token of `limiter` (unlimited by default) before the batch is written."""

    def __init__(
        self, folder: Path, signer: DkimSigner | None = None, limiter: RateLimiter | None = None
    ) -> None:
        self.folder = folder
        self.signer = signer
        self.limiter = limiter or RateLimiter()

    @classmethod
    def from_settings(cls, settings: Settings) -> FileTransport:
        email = settings.email
        return cls(email.outbox_dir, DkimSigner.from_settings(email))

    async def send_many(
        self,
        envelopes: Sequence[Envelope],
        halt: Halt | None = None,
        *,
        take: Take | None = None,
        ready: Ready | None = None,  # unused: a resend replaces its own file
    ) -> list[Delivery]:
        taken: list[Envelope] = []
        for envelope in envelopes:
            await self.limiter.acquire()
            if take is None or await take(envelope):
                taken.append(envelope)
        written = {d.outbox_id: d for d in await asyncio.to_thread(self._write_all, taken, halt)}
        return [written.get(e.outbox_id) or unsent(e, "not taken") for e in envelopes]

    def _write_all(self, envelopes: Sequence[Envelope], halt: Halt | None) -> list[Delivery]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"cannot create {self.folder}: {exc.strerror}"
            return [retry(e, reason) for e in envelopes]
        deliveries: list[Delivery] = []
        for envelope in envelopes:
            deliveries.append(self._write(envelope))
            if halt is not None and halt(deliveries[-1]):
                deliveries += [unsent(e, "sending paused") for e in envelopes[len(deliveries) :]]
                break
        try:
            sync_folder(self.folder)
        except OSError as exc:
            reason = f"cannot sync {self.folder}: {exc.strerror}"
            return [retry(e, reason) for e in envelopes]
        return deliveries

    def _write(self, envelope: Envelope) -> Delivery:
        path = self.folder / file_name(envelope)
        try:
            data = self.signer.sign(envelope.data) if self.signer else envelope.data
            write_atomic(path, data)
        except SigningError as exc:
            return retry(envelope, str(exc))
        except OSError as exc:
            return retry(envelope, f"cannot write {path}: {exc.strerror}")
        return Delivery(envelope.outbox_id, Outcome.SENT, None, f"written to {path}")

    async def aclose(self) -> None:
        return None
