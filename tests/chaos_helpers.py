"""Helpers for the crash and chaos tests: an aiosmtpd sink that logs every Message-ID, a config
for `feedpipe send` over it, and the sending process to kill."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from feedpipe.model import OutboxState
from feedpipe.store import Store
from tests.outbox_helpers import add_subscribers, edition, queue, settings

REPO = Path(__file__).resolve().parents[1]
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class Recorder:
    """aiosmtpd handler: accepts everything and records each message's Message-ID."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        head = data[: data.find(b"\r\n\r\n")]
        match = _MESSAGE_ID.search(head)
        with self.lock:
            self.ids.append(match[1].decode() if match else "")
        return "250 OK"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.ids)

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(self.ids)

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.counts().values())


class LocalServer(Controller):
    """aiosmtpd's threaded controller on a port the OS picks."""

    def __init__(self, handler: Recorder, **kwargs: Any) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=0, **kwargs)

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@contextmanager
def id_sink() -> Iterator[tuple[LocalServer, Recorder]]:
    recorder = Recorder()
    controller = LocalServer(recorder)
    controller.start()
    try:
        yield controller, recorder
    finally:
        controller.stop()


def send_config(tmp_path: Path, url: str, port: int, **email: object) -> Path:
    """A config.toml for `feedpipe send` into the sink; `email` adds [email] keys, and
    [email.smtp] keys as smtp_<key>."""
    posts = tmp_path / "posts"
    posts.mkdir(exist_ok=True)
    plain = {k: v for k, v in email.items() if not k.startswith("smtp_")}
    smtp = {k.removeprefix("smtp_"): v for k, v in email.items() if k.startswith("smtp_")}
    lines = [
        "[site]", 'title = "Blog"', 'url = "https://blog.example.com"',
        "[source]", f'path = "{posts}"',
        "[store]", f'url = "{url}"',
        "[email]", 'transport = "smtp"', 'from_address = "digest@blog.example.com"',
        *(f"{k} = {v!r}" for k, v in plain.items()),
        "[email.smtp]", 'host = "127.0.0.1"', f"port = {port}",
        *(f"{k} = {v!r}" for k, v in smtp.items()),
    ]  # fmt: skip
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def start_send(config: Path) -> subprocess.Popen[bytes]:
    """`feedpipe send` in a process of its own (output captured)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"}
    return subprocess.Popen(
        [sys.executable, "-m", "feedpipe", "--config", str(config), "send"],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def fill(root: Path, url: str, count: int) -> set[str]:
    """`count` queued digests; their Message-IDs."""
    with Store.open(url) as store:
        subs = add_subscribers(store, count)
        queue(store, edition(settings(root, url)), subs, datetime.now(UTC))
        return {m[3] for i in subs for m in store.outbox_messages(i)}


def counts(url: str) -> dict[OutboxState, int]:
    with Store.open(url) as store:
        return store.outbox_counts()
