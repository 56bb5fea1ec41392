"""A real `feedpipe serve` killed with SIGKILL after it accepted form requests and before it did
their work: the restarted server does the work, and each email goes out exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from feedpipe.store import SqlStore
from tests.helpers import sqlite_file_url, write_config, write_post
from tests.test_access_log import free_port

REPO = Path(__file__).resolve().parents[1]
FEEDPIPE = [sys.executable, "-m", "feedpipe"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    return env | {"PYTHONPATH": str(REPO / "src"), "FEEDPIPE_SECRET_KEY": "s" * 32, **extra}


@contextmanager
def serving(config: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`feedpipe serve` on a free port of 127.0.0.1, until it answers; stopped at the end."""
    port = free_port()
    command = [*FEEDPIPE, "--config", str(config), "serve", "--port", str(port)]
    proc = subprocess.Popen(
        command, env=_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, "feedpipe serve exited"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)


def post_form(url: str, **fields: str) -> tuple[int, str]:
    body = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(url, body), timeout=30) as answer:
        return answer.status, answer.read().decode()


def wait_for(store: SqlStore, waiting: int, seconds: float = 30) -> None:
    """Until `waiting` requests are stored (bounded)."""
    deadline = time.monotonic() + seconds
    while store.intake_count() != waiting:
        assert time.monotonic() < deadline, f"{store.intake_count()} requests still stored"
        time.sleep(0.1)


def feedpipe(config: Path, *args: str) -> str:
    run = subprocess.run(
        [*FEEDPIPE, "--config", str(config), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_requests_accepted_before_a_sigkill_are_mailed_once_after_the_restart(
    tmp_path: Path,
) -> None:
    posts = tmp_path / "posts"
    posts.mkdir()
    write_post(posts, "hello", "2026-01-01T09:00:00Z", '["Rust"]')
    config = write_config(tmp_path, posts)
    with config.open("a", encoding="utf-8") as extra:
        extra.write('[web]\nbase_url = "https://news.example.com"\n[email]\n')
        extra.write(f'outbox_dir = "{tmp_path / "mail"}"\n')
    feedpipe(config, "subscribers", "add", "bob@example.com", "--confirmed")
    store = SqlStore.open(sqlite_file_url(tmp_path))
    try:
        # The intake waits an hour before any work: the window between reply and work.
        with serving(config, FEEDPIPE_WEB_INTAKE_DELAY="3600") as (proc, base):
            status, page = post_form(base + "/subscribe", email="ann@example.com")
            assert status == 200 and "Check your inbox" in page
            status, page = post_form(base + "/unsubscribe", email="bob@example.com")
            assert status == 200 and "Check your inbox" in page
            assert store.intake_count() == 2  # stored before the reply
            assert store.subscriber_by_email("ann@example.com") is None  # no work yet
            proc.kill()
            assert proc.wait(30) == -9
        with serving(config):
            wait_for(store, 0)  # taken over at start-up, done, deleted
        with serving(config):  # one more restart: nothing left to replay
            time.sleep(1)
        ann = store.subscriber_by_email("ann@example.com")
        assert ann is not None and ann.status.value == "pending"
    finally:
        store.close()
    assert "2 sent" in feedpipe(config, "send")
    mail = [_parse(path.read_bytes()) for path in sorted((tmp_path / "mail").glob("*.eml"))]
    assert Counter((m["To"], m["Subject"]) for m in mail) == {
        ("ann@example.com", "Confirm your subscription to Test Blog"): 1,
        ("bob@example.com", "Your Test Blog digest links"): 1,
    }
    confirm = mail[[m["To"] for m in mail].index("ann@example.com")]
    text = confirm.get_body(("plain",))
    assert text is not None and "https://news.example.com/c/" in text.get_content()


def _parse(data: bytes) -> EmailMessage:
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed
