"""Failures are loud: `feedpipe send` in a subprocess against a closed port, a listener that
never speaks SMTP and a server that refuses one recipient; exit statuses, messages, outbox and
status."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpipe.cli import cli
from tests.helpers import write_post
from tests.smtp_servers import RejectHandler, serve

T0 = "2026-03-01T00:00:00Z"
SEND_AT = "2026-03-02T08:00:00Z"
REPO = Path(__file__).resolve().parents[1]
Feedpipe = Callable[..., subprocess.CompletedProcess[str]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Callable[[int], Feedpipe]:
    """`site(port)`: two subscribers with one new post, mail going to 127.0.0.1:port; returns
    a runner of `feedpipe ARGS` in a subprocess."""
    posts = tmp_path / "posts"
    posts.mkdir()
    write_post(posts, "alpha", "2026-03-01T09:00:00Z", '["Rust"]')
    config = tmp_path / "config.toml"

    def make(port: int) -> Feedpipe:
        config.write_text(
            '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
            f'[source]\npath = "{posts}"\n[store]\nurl = "{sqlite_url}"\n'
            '[digest]\ntimezone = "UTC"\nsend_time = "08:00"\n'
            '[email]\ntransport = "smtp"\n'
            f'[email.smtp]\nhost = "127.0.0.1"\nport = {port}\nconnect_timeout_seconds = 1\n'
            "timeout_seconds = 5\n",
            encoding="utf-8",
        )
        invoke = CliRunner().invoke
        for who in ("ann", "bob"):
            args = ["--config", str(config), "subscribers", "add", f"{who}@example.com"]
            assert invoke(cli, [*args, "--confirmed", "--now", T0]).exit_code == 0
        seen = "2026-03-01T10:00:00Z"  # first seen after they subscribed: new to them
        assert invoke(cli, ["--config", str(config), "sync", "--now", seen]).exit_code == 0

        def feedpipe(*args: str) -> subprocess.CompletedProcess[str]:
            env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
            env["PYTHONPATH"] = str(REPO / "src")
            return subprocess.run(
                [sys.executable, "-m", "feedpipe", "--config", str(config), *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )

        return feedpipe

    return make


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts connections and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def test_send_to_a_closed_port_exits_3_naming_host_port_and_the_os_error(
    site: Callable[[int], Feedpipe],
) -> None:
    port = free_port()
    feedpipe = site(port)
    sent = feedpipe("send", "--now", SEND_AT)
    assert sent.returncode == 3, sent.stderr
    assert "0 sent, 2 to retry" in sent.stdout
    [line] = sent.stderr.splitlines()
    assert line.startswith("feedpipe: mail server unreachable: ")
    assert f"127.0.0.1:{port} refused the connection (Connection refused" in line
    assert "check [email.smtp] host and port" in line
    assert line.endswith("queued for the next `feedpipe send` or worker: 2 messages")
    assert "Traceback" not in sent.stderr

    shown = feedpipe("outbox")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    groups = lines[lines.index("failing messages by reason:") + 3]
    assert groups.split()[:2] == ["2", "retry"] and f"127.0.0.1:{port} refused" in groups
    recent = lines[lines.index("most recent failing messages:") + 3 :]
    assert len(recent) == 2 and all("refused the connection" in r for r in recent)

    status = feedpipe("status", "--json")
    assert status.returncode == 0, status.stderr
    runs = json.loads(status.stdout)["runs"]
    assert runs["plan"]["outcome"] == "ok" and runs["plan"]["worker"].startswith("cli send@")
    assert runs["dispatch"]["outcome"] == "error"
    assert f"127.0.0.1:{port} refused the connection" in runs["dispatch"]["error"]
    assert runs["sync"]["worker"].startswith("cli sync@")  # CliRunner runs are recorded too


def test_a_listener_that_is_not_smtp_fails_within_the_connect_timeout(
    site: Callable[[int], Feedpipe], silent_listener: int
) -> None:
    feedpipe = site(silent_listener)
    sent = feedpipe("send", "--now", SEND_AT)
    assert sent.returncode == 3, sent.stderr
    assert f"no SMTP greeting from 127.0.0.1:{silent_listener} within 1 s" in sent.stderr
    assert "is it an SMTP server?" in sent.stderr
    # the summary's own figure: the dispatch gave up after the 1 s connect timeout, not 5 s
    seconds = float(sent.stdout.split("(")[1].split(" s)")[0])
    assert seconds < 5


def test_a_refused_recipient_exits_1_and_outbox_shows_the_reply(
    site: Callable[[int], Feedpipe],
) -> None:
    handler = RejectHandler(rcpt_codes={"bob@example.com": 550})
    with serve(handler) as server:
        feedpipe = site(server.port)
        sent = feedpipe("send", "--now", SEND_AT)
        shown = feedpipe("outbox")
    assert sent.returncode == 1, sent.stderr
    assert "1 sent, 0 to retry, 1 failed" in sent.stdout
    assert "1 message not sent (1 failed, 0 to retry): `feedpipe outbox`" in sent.stderr
    lines = shown.stdout.splitlines()
    group = lines[lines.index("failing messages by reason:") + 3].split()
    assert group[:3] == ["1", "failed", "550"]
    assert "bob@example.com" in lines[-1] and "Recipient address rejected" in lines[-1]
