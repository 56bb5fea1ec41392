"""Lock contention: a write waits another process's lock out ([store] busy_timeout_seconds,
retried with backoff), then says so in one line and exits 4 — nothing lost, no traceback."""

from __future__ import annotations

import logging
import random
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from feedpipe.errors import StoreLockedError
from feedpipe.model import OutboxState
from feedpipe.store import SqlStore
from feedpipe.store.wrap import backoff, is_lock_error
from feedpipe.worker.runner import describe
from tests.outbox_helpers import T0, add_subscribers, edition, queue, settings
from tests.worker_helpers import FEEDPIPE, REPO, env_for, worker_config

LEASE = timedelta(minutes=1)
SENTENCE = "the store is locked by another process ({} s); nothing was lost; run again"


@contextmanager
def holding_write_lock(url: str) -> Iterator[None]:
    """Another connection holds the write lock of the store at `url` until the block ends:
    SQLite's (BEGIN IMMEDIATE), or an exclusive lock on PostgreSQL's outbox table."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("COMMIT")
            conn.close()
        return
    engine = sa.create_engine(url)
    with engine.connect() as pg:
        pg.execute(sa.text("LOCK TABLE outbox IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            pg.rollback()
    engine.dispose()


def queued(tmp_path: Path, url: str, count: int) -> None:
    with SqlStore.open(url) as store:
        ids = add_subscribers(store, count)
        assert queue(store, edition(settings(tmp_path, url)), ids)[1] == count


def hold_lock_for(url: str, seconds: float) -> threading.Thread:
    """A thread that holds the write lock for `seconds`; returns once the lock is taken."""
    taken = threading.Event()

    def hold() -> None:
        with holding_write_lock(url):
            taken.set()
            time.sleep(seconds)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(30)
    return thread


@pytest.mark.postgres
def test_a_lock_released_in_time_is_waited_out_and_one_held_too_long_is_reported(
    tmp_path: Path, store_url: str
) -> None:
    queued(tmp_path, store_url, 5)
    with SqlStore.open(store_url, busy_timeout=0.5) as store:
        with holding_write_lock(store_url):
            started = time.monotonic()
            with pytest.raises(StoreLockedError) as raised:
                store.claim_outbox("w", T0, LEASE, 10)
            waited = time.monotonic() - started
        assert str(raised.value) == SENTENCE.format("0.5")
        assert waited >= 0.5  # it waited the whole budget before giving up
        assert store.outbox_counts()[OutboxState.QUEUED] == 5  # nothing changed
    with SqlStore.open(store_url, busy_timeout=30) as store:
        holder = hold_lock_for(store_url, 1.0)
        assert len(store.claim_outbox("w", T0, LEASE, 10).messages) == 5  # waited, then claimed
        holder.join()


def test_lock_errors_are_recognised_and_other_errors_are_not() -> None:
    locked = sa.exc.OperationalError("UPDATE x", {}, sqlite3.OperationalError("database is locked"))
    other = sa.exc.OperationalError("UPDATE x", {}, sqlite3.OperationalError("disk I/O error"))
    assert is_lock_error(locked) and not is_lock_error(other)
    rng = random.Random(1)
    pauses = [backoff(n, rng) for n in range(12)]
    assert all(0 < p <= 1.0 for p in pauses) and pauses[-1] > pauses[0]


def test_the_worker_logs_the_sentence_not_the_driver_error() -> None:
    assert describe(StoreLockedError(30)) == SENTENCE.format("30")
    assert describe(ValueError("x")) == "ValueError: x"
    assert logging.getLogger("feedpipe.worker")  # the runner's logger exists


def send_config(tmp_path: Path, url: str, busy_timeout: float | None) -> Path:
    posts = tmp_path / "posts"
    posts.mkdir(exist_ok=True)
    config = worker_config(tmp_path, posts, url)
    if busy_timeout is not None:
        text = config.read_text(encoding="utf-8")
        text = text.replace("[feeds]", f"busy_timeout_seconds = {busy_timeout}\n[feeds]", 1)
        config.write_text(text, encoding="utf-8")
    return config


def feedpipe_send(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*FEEDPIPE, "send"], cwd=REPO, env=env_for(config),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


@pytest.mark.slow
def test_send_waits_out_a_lock_held_for_10_seconds_and_sends_everything(
    tmp_path: Path, sqlite_url: str
) -> None:
    queued(tmp_path, sqlite_url, 300)
    config = send_config(tmp_path, sqlite_url, None)  # the default: 30 s
    with holding_write_lock(sqlite_url):
        proc = feedpipe_send(config)
        time.sleep(10)
        assert proc.poll() is None  # still waiting
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert b"300 sent" in out
    assert len(list((tmp_path / "eml").glob("*.eml"))) == 300


def test_send_past_the_busy_timeout_says_one_line_exits_4_and_loses_nothing(
    tmp_path: Path, sqlite_url: str
) -> None:
    queued(tmp_path, sqlite_url, 50)
    config = send_config(tmp_path, sqlite_url, 1)
    with holding_write_lock(sqlite_url):
        proc = feedpipe_send(config)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4
    assert err.decode().splitlines() == [f"feedpipe: {SENTENCE.format('1')}"]
    assert b"Traceback" not in out + err
    with SqlStore.open(sqlite_url) as store:
        assert store.outbox_counts()[OutboxState.QUEUED] == 50  # nothing lost, nothing half-done
    again = feedpipe_send(config)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err.decode()
    assert len(list((tmp_path / "eml").glob("*.eml"))) == 50
