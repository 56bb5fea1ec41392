"""`serve --access-log` and `[web] access_log`: one line per real HTTP request with method,
path, status, bytes and duration; no client address; link tokens masked; off by default."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import write_config, write_post

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r".* access (GET|HEAD|POST) (\S+) (\d{3}) (\d+) B (\d+\.\d) ms")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(config: Path, *args: str) -> Iterator[tuple[str, list[str]]]:
    """`feedpipe serve` on a free port; its base URL and its stderr lines so far."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env.update(PYTHONPATH=str(REPO / "src"), FEEDPIPE_SECRET_KEY="s" * 32)
    command = [sys.executable, "-m", "feedpipe", "--config", str(config), "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *args],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, lines
                time.sleep(0.1)
        yield base, lines
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(10)


def get(url: str) -> tuple[int, int]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, len(exc.read())


@pytest.fixture
def site(tmp_path: Path) -> Path:
    posts = tmp_path / "posts"
    posts.mkdir()
    write_post(posts, "hello", "2026-01-01T09:00:00Z", '["Rust"]')
    return write_config(tmp_path, posts)


def access_lines(lines: list[str], count: int) -> list[re.Match[str]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [m for line in lines if (m := LINE.match(line.rstrip("\n")))]
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(lines)


def test_access_log_has_a_line_per_request_and_no_address_or_token(site: Path) -> None:
    with serving(site, "--access-log") as (base, lines):
        requests = ["/subscribe", "/nothing-here.xml", "/p/SECRET-TOKEN-VALUE?x=1"]
        answers = [get(base + path) for path in requests]
        found = access_lines(lines, 3)
    assert [(m[2], int(m[3]), int(m[4])) for m in found] == [
        ("/subscribe", 200, answers[0][1]),
        ("/nothing-here.xml", 404, answers[1][1]),
        ("/p/…", 400, answers[2][1]),
    ]
    text = "".join(lines)
    assert "SECRET-TOKEN-VALUE" not in text and "x=1" not in text
    assert not any("127.0.0.1:" in line for line in lines if " access " in line)


def test_access_log_is_off_by_default_and_on_by_config(site: Path) -> None:
    with serving(site) as (base, lines):
        assert get(base + "/subscribe")[0] == 200
        time.sleep(0.5)
    assert not any(LINE.match(line) for line in lines)
    site.write_text(
        site.read_text(encoding="utf-8") + '[web]\nbase_url = "https://example.org"\n'
        "access_log = true\n",
        encoding="utf-8",
    )
    with serving(site) as (base, lines):
        assert get(base + "/subscribe")[0] == 200
        assert access_lines(lines, 1)[0][2] == "/subscribe"
