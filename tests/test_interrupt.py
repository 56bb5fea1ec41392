"""Ctrl-C is safe: SIGINT to the whole process group (as a terminal sends it) at random moments
of a cold sync and a large import ends the command with one line naming what was done, exit
130, no traceback, no process left behind, and a store holding exactly what the line says
(the next run does the rest); SIGTERM likewise (143); SIGKILL leaves no pool worker behind."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from feedpipe.clock import SystemClock
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from tests.helpers import write_config, write_post

REPO = Path(__file__).resolve().parents[1]
TRIALS = 20
POSTS = 300  # more than sync's PARALLEL_THRESHOLD: parsed in a process pool
SUBSCRIBERS = 6_000  # more than PARALLEL_ROWS: validated in a process pool
LINE = re.compile(
    r"feedpipe: (interrupted|terminated): (?:(\d+) of (\d+) (?:documents synced|rows imported), )?"
    r"nothing lost — .* the next run does the rest"
)
PROGRESS = re.compile(r"feedpipe: (sync|import): \d+ of \d+ \w+ \(\d+%\)")


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


def survivors(marker: str) -> list[int]:
    """Processes still running with the trial's marker in their environment."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"FEEDPIPE_TEST_MARKER={marker}".encode() in (proc / "environ").read_bytes():
                status = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if status != "Z":  # a zombie is dead, waiting for its parent to reap it
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def no_survivors(marker: str) -> None:
    deadline = time.monotonic() + 10
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(marker) == [], "a process outlived the command"


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def interrupt(
    config: Path, args: tuple[str, ...], delay: float, signum: int = signal.SIGINT
) -> tuple[int, int | None, int | None]:
    """Run; once it has started (its store exists), wait `delay` s and send `signum` to its
    process group. Returns (exit status, N done, M in all) from its one interrupted line."""
    marker = uuid.uuid4().hex
    proc = start(config, marker, *args)
    wait_for((config.parent / "fp.db").exists, proc)
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):  # already done
        os.killpg(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    no_survivors(marker)
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert all(PROGRESS.match(line) for line in lines[:-1]), err
    if proc.returncode == 0:
        return 0, None, None
    assert proc.returncode == (130 if signum == signal.SIGINT else 143), err
    found = LINE.fullmatch(lines[-1])
    assert found, err
    assert found[1] == ("interrupted" if signum == signal.SIGINT else "terminated")
    done, total = (int(n) if n else None for n in found.groups()[1:])
    return proc.returncode, done, total


def work_seconds(config: Path, args: tuple[str, ...]) -> float:
    """How long the command works once started (store open → exit), run whole once: the
    random moments of the trials fall in that window, however loaded the machine is."""
    proc = start(config, uuid.uuid4().hex, *args)
    wait_for((config.parent / "fp.db").exists, proc)
    started = time.monotonic()
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    return time.monotonic() - started


def open_service(config: Path) -> Feedpipe:
    return Feedpipe.from_settings(load_settings(config), SystemClock())


def sync_trial(tmp_path: Path, posts: Path, trial: int, delay: float, signum: int) -> int:
    (tmp_path / f"t{trial}").mkdir()
    config = write_config(tmp_path / f"t{trial}", posts)
    code, done, total = interrupt(config, ("sync",), delay, signum)
    with open_service(config) as service:
        if code:  # the store holds exactly the batches the line counts (or nothing)
            assert total in (None, POSTS)
            assert service.post_count() == (done or 0)
        report = service.sync()  # the next run does the rest
        assert len(report.added) + report.unchanged == POSTS
        assert service.post_count() == POSTS
    return code


@pytest.fixture(scope="module")
def many_posts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    posts = tmp_path_factory.mktemp("posts")
    for i in range(POSTS):
        write_post(posts, f"post-{i:04d}", "2026-01-01T09:00:00Z", '["Rust"]')
    return posts


@pytest.mark.slow
def test_sigint_during_a_cold_sync(tmp_path: Path, many_posts: Path) -> None:
    (tmp_path / "whole").mkdir()
    window = work_seconds(write_config(tmp_path / "whole", many_posts), ("sync",))
    rng = random.Random(14)
    codes = [
        sync_trial(tmp_path, many_posts, t, rng.uniform(0, window), signal.SIGINT)
        for t in range(TRIALS)
    ]
    assert 130 in codes, codes  # (a trial whose command ended first checks exit 0)


@pytest.mark.slow
def test_sigterm_during_a_cold_sync(tmp_path: Path, many_posts: Path) -> None:
    (tmp_path / "whole").mkdir()
    window = work_seconds(write_config(tmp_path / "whole", many_posts), ("sync",))
    rng = random.Random(15)
    codes = [
        sync_trial(tmp_path, many_posts, t, rng.uniform(0, window), signal.SIGTERM)
        for t in range(5)
    ]
    assert 143 in codes, codes


@pytest.mark.slow
def test_sigint_during_a_large_import(tmp_path: Path) -> None:
    csv = tmp_path / "subs.csv"
    rows = "".join(f"u{i}@example.com,,,daily,,08:00,UTC,active\n" for i in range(SUBSCRIBERS))
    csv.write_text("email,name,categories,frequency,weekday,time,timezone,status\n" + rows)
    posts = tmp_path / "posts"
    posts.mkdir()
    args = ("subscribers", "import", str(csv))
    (tmp_path / "whole").mkdir()
    window = work_seconds(write_config(tmp_path / "whole", posts), args)
    rng = random.Random(41)
    codes = []
    for trial in range(TRIALS):
        (tmp_path / f"t{trial}").mkdir()
        config = write_config(tmp_path / f"t{trial}", posts)
        code, done, total = interrupt(config, args, rng.uniform(0, window))
        codes.append(code)
        with open_service(config) as service:
            if code:  # every committed chunk stays, and only those
                assert total in (None, SUBSCRIBERS)
                assert len(service.store.subscribers()) == (done or 0)
            with csv.open(encoding="utf-8", newline="") as stream:  # the next run does the rest
                again = service.subscriptions.import_csv(stream)
            assert again.added == SUBSCRIBERS - (done or 0) if code else again.added == 0
            assert len(service.store.subscribers()) == SUBSCRIBERS
    assert 130 in codes, codes


def children_of(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if (
                proc.name.isdigit()
                and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
            ):
                found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("command", ["sync", "build"])
def test_sigkill_leaves_no_pool_worker(tmp_path: Path, command: str) -> None:
    """SIGKILL of the command while its process pool runs: the workers die with it."""
    posts = tmp_path / "posts"
    posts.mkdir()
    for i in range(POSTS * 2):  # categories enough for a pooled build too (PARALLEL_FEEDS)
        write_post(posts, f"post-{i:04d}", "2026-01-01T09:00:00Z", f'["C{i % 90}"]')
    config = write_config(tmp_path, posts)
    if command == "build":
        assert (
            subprocess.run(
                [sys.executable, "-m", "feedpipe", "--config", str(config), "sync"],
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                capture_output=True,
                timeout=120,
            ).returncode
            == 0
        )
    marker = uuid.uuid4().hex
    proc = start(config, marker, command, *(["--no-sync", "--full"] if command == "build" else []))
    wait_for(lambda: len(children_of(proc.pid)) >= 2, proc)  # the pool is up
    assert proc.poll() is None, proc.communicate()
    workers = children_of(proc.pid)
    assert workers
    proc.kill()
    proc.communicate(timeout=60)
    no_survivors(marker)
