"""Ctrl-C is safe: SIGINT to the whole process group (as a terminal sends it) at random moments
of a cold sync and a large import ends the command with one line, exit 130, no traceback, no
process left behind, and a store the next run completes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import write_config, write_post

REPO = Path(__file__).resolve().parents[1]
TRIALS = 5
POSTS = 600
SUBSCRIBERS = 8_000


def start(config: Path, marker: str, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env.update(PYTHONPATH=str(REPO / "src"), FEEDPIPE_TEST_MARKER=marker)
    return subprocess.Popen(
        [sys.executable, "-m", "feedpipe", "--config", str(config), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )


def feedpipe(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    return subprocess.run(
        [sys.executable, "-m", "feedpipe", "--config", str(config), *args],
        env={**env, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def survivors(marker: str) -> list[int]:
    """Processes still running with the trial's marker in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"FEEDPIPE_TEST_MARKER={marker}".encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def interrupt(config: Path, args: tuple[str, ...], rng: random.Random) -> tuple[int, str]:
    """Run, send SIGINT to its group after a random delay; the exit status and stderr."""
    marker = uuid.uuid4().hex
    proc = start(config, marker, *args)
    time.sleep(rng.uniform(0.2, 3.0))
    with contextlib.suppress(ProcessLookupError):  # already done
        os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=30)
    deadline = time.monotonic() + 5
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert survivors(marker) == [], "a process outlived the interrupted command"
    assert time.monotonic() - started < 30
    assert "Traceback" not in err, err
    if proc.returncode == 130:
        assert err.count("\n") == 1 and err.startswith("feedpipe: interrupted: nothing lost"), err
    else:
        assert proc.returncode == 0, err
    return proc.returncode, err


@pytest.mark.quarantine  # ~1 run in 5 still fails: a SIGINT window not yet found
@pytest.mark.slow
def test_sigint_during_a_cold_sync(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    posts.mkdir()
    for i in range(POSTS):
        write_post(posts, f"post-{i:04d}", "2026-01-01T09:00:00Z", '["Rust"]')
    rng = random.Random(14)
    codes = []
    for trial in range(TRIALS):
        (tmp_path / f"t{trial}").mkdir()
        config = write_config(tmp_path / f"t{trial}", posts)
        codes.append(interrupt(config, ("sync",), rng)[0])
        done = feedpipe(config, "sync")
        assert done.returncode == 0, done.stderr
        added, unchanged = (int(done.stdout.split(w)[0].split()[-1]) for w in (" added", " unc"))
        assert added + unchanged == POSTS  # the store is whole after the next run
    assert 130 in codes


@pytest.mark.quarantine  # ~1 run in 5 still fails: a SIGINT window not yet found
@pytest.mark.slow
def test_sigint_during_a_large_import(tmp_path: Path) -> None:
    csv = tmp_path / "subs.csv"
    rows = "".join(f"u{i}@example.com,,,daily,,08:00,UTC,active\n" for i in range(SUBSCRIBERS))
    csv.write_text("email,name,categories,frequency,weekday,time,timezone,status\n" + rows)
    posts = tmp_path / "posts"
    posts.mkdir()
    rng = random.Random(41)
    codes = []
    for trial in range(TRIALS):
        (tmp_path / f"t{trial}").mkdir()
        config = write_config(tmp_path / f"t{trial}", posts)
        codes.append(interrupt(config, ("subscribers", "import", str(csv)), rng)[0])
        again = feedpipe(config, "subscribers", "import", str(csv))  # the next run does the rest
        assert again.returncode in (0, 1), again.stderr  # 1: rows already there are skipped
        listed = feedpipe(config, "subscribers", "export")
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.splitlines()) == SUBSCRIBERS + 1
    assert 130 in codes
