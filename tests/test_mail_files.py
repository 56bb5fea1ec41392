"""FileTransport: one .eml per message, written atomically, the same file on a resend."""

from __future__ import annotations

import asyncio
import email
import os
from collections.abc import Sequence
from email import policy
from pathlib import Path

import pytest

from feedpipe.mail import Delivery, Envelope, FileTransport, Outcome
from feedpipe.mail.files import file_name, message_id_slug


def message(n: int, message_id: str | None = None) -> bytes:
    mid = message_id or f"<ob{n}.e1@blog.example.com>"
    return (
        f"From: Blog <digest@blog.example.com>\r\nTo: reader{n}@example.org\r\n"
        f"Subject: Digest {n}\r\nMessage-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\nHello {n}\r\n.\r\n"
    ).encode()


def envelope(n: int, data: bytes | None = None) -> Envelope:
    return Envelope(n, "digest@blog.example.com", f"reader{n}@example.org", data or message(n))


def send(transport: FileTransport, batch: Sequence[Envelope]) -> list[Delivery]:
    async def run() -> list[Delivery]:
        try:
            return await transport.send_many(batch)
        finally:
            await transport.aclose()

    return asyncio.run(run())


def test_one_file_per_message_named_by_outbox_id_and_message_id(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    batch = [envelope(n) for n in range(1, 6)]
    deliveries = send(FileTransport(folder), batch)
    assert [d.outcome for d in deliveries] == [Outcome.SENT] * 5
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{n}-ob{n}.e1@blog.example.com.eml" for n in range(1, 6)
    ]
    for env in batch:
        data = (folder / file_name(env)).read_bytes()
        assert data == env.data
        parsed = email.message_from_bytes(data, policy=policy.default)
        assert parsed["Message-ID"] == f"<ob{env.outbox_id}.e1@blog.example.com>"


def test_resend_is_idempotent(tmp_path: Path) -> None:
    transport = FileTransport(tmp_path)
    send(transport, [envelope(1), envelope(2)])
    again = send(transport, [envelope(1, message(1).replace(b"Hello", b"Hi"))])
    assert again[0].outcome is Outcome.SENT
    assert len(list(tmp_path.iterdir())) == 2
    assert b"Hi 1" in (tmp_path / file_name(envelope(1))).read_bytes()


def test_file_names_cannot_escape_the_folder() -> None:
    assert message_id_slug(message(1, "<../../etc/passwd@x>")) == ".._.._etc_passwd@x"
    assert message_id_slug(b"Subject: no id\r\n\r\nMessage-ID: <body@x>\r\n") == "no-message-id"
    assert "/" not in message_id_slug(message(1, "<a/b\\c d@x>"))


def test_a_failed_write_leaves_no_partial_file_and_is_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    deliveries = send(FileTransport(tmp_path), [envelope(n) for n in (1, 2, 3)])
    assert [d.outcome for d in deliveries] == [Outcome.SENT, Outcome.RETRY, Outcome.SENT]
    assert "No space left" in deliveries[1].reply
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        file_name(envelope(1)),
        file_name(envelope(3)),
    ]  # no temporary files, no partial message 2


def test_unwritable_folder_is_retry_for_all(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    deliveries = send(FileTransport(blocker / "outbox"), [envelope(1), envelope(2)])
    assert [d.outcome for d in deliveries] == [Outcome.RETRY, Outcome.RETRY]
