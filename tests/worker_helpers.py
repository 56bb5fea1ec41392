"""Helpers for worker tests: a full config file, posts, subscribers, processes and polling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import sqlite_file_url

REPO = Path(__file__).resolve().parents[1]
FEEDPIPE = [sys.executable, "-m", "feedpipe"]


def worker_config(
    root: Path, posts: Path, store_url: str | None = None, *, worker: str = "", email: str = ""
) -> Path:
    """config.toml in `root`: SQLite (or `store_url`), feeds in root/out, .eml files in
    root/eml, short worker intervals; `worker` and `email` add keys to those sections."""
    store = store_url or sqlite_file_url(root)
    text = (
        '[site]\ntitle = "Test Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{posts}"\n[store]\nurl = "{store}"\n'
        f'[feeds]\noutput_dir = "{root / "out"}"\n'
        '[digest]\ntimezone = "Europe/Berlin"\nsend_time = "08:00"\n'
        '[web]\nbase_url = "https://news.example.com"\n'
        f'[email]\noutbox_dir = "{root / "eml"}"\n'
        f'unsubscribe_mailto = "unsub@example.com"\n{email}\n'
        f"[worker]\n{_worker_keys(worker)}\n"
    )
    path = root / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


WORKER_DEFAULTS = {
    "poll_seconds": "60",
    "plan_seconds": "1",
    "dispatch_seconds": "0.5",
    "debounce_seconds": "0.1",
    "lease_seconds": "5",
    "shutdown_timeout": "10",
}


def _worker_keys(extra: str) -> str:
    """The [worker] lines: short defaults, each replaced by a line of `extra` with its key."""
    keys = dict(WORKER_DEFAULTS)
    for line in extra.splitlines():
        key, _, value = line.partition("=")
        if value:
            keys[key.strip()] = value.strip()
    return "\n".join(f"{k} = {v}" for k, v in keys.items())


def env_for(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env.update(FEEDPIPE_CONFIG=str(config), PYTHONUNBUFFERED="1", **extra)
    return env


def start_worker(config: Path, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    """`feedpipe run` in its own process, stderr (the log) into `log`."""
    handle = log.open("ab")
    return subprocess.Popen(
        [*FEEDPIPE, "run", *args],
        cwd=REPO,
        env=env_for(config, **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def wait_for(check: Callable[[], Any], timeout: float, step: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(step)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    """Signal a worker and wait for its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def log_has(log: Path, text: str) -> bool:
    return log.exists() and text in log.read_text(encoding="utf-8", errors="replace")
