"""Worker processes: graceful and forced shutdown, and scale-out on PostgreSQL (leader election,
failover, exactly-once dispatch by three workers, a dispatcher killed mid-batch)."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import SMTP

from feedpipe.model import OutboxState
from feedpipe.store import SqlStore
from tests.outbox_helpers import add_subscribers, edition, queue, settings
from tests.smtp_servers import RecordingHandler, SmtpServer
from tests.worker_helpers import FEEDPIPE, REPO, env_for, log_has, start_worker, stop, wait_for
from tests.worker_helpers import worker_config as write_config

pytestmark = pytest.mark.slow


@dataclass
class SlowHandler(RecordingHandler):
    """Accepts every message after `delay` seconds (so a dispatch is in flight for a while)."""

    delay: float = 0.0

    async def on_data(self, server: SMTP, rcpts: tuple[str, ...], count: int) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        return None


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes a test started: killed at teardown if the test left any running."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def sink() -> Iterator[SmtpServer]:
    server = SmtpServer(SlowHandler())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def smtp_config(
    tmp_path: Path, store_url: str, port: int, batch: int, workers: str = "", lease: float = 60
) -> Path:
    posts = tmp_path / "posts"
    posts.mkdir(exist_ok=True)
    email = (
        f'transport = "smtp"\nbatch_size = {batch}\nlease_seconds = {lease}\n'
        f"[email.smtp]\nport = {port}\nconcurrency = 4"
    )
    return write_config(tmp_path, posts, store_url, email=email, worker=workers)


def fill(tmp_path: Path, store_url: str, count: int) -> SqlStore:
    """`count` queued messages (one edition) in the store; returns the open store."""
    store = SqlStore.open(store_url)
    ids = add_subscribers(store, count)
    assert queue(store, edition(settings(tmp_path, store_url)), ids)[1] == count
    return store


def received_ids(sink: SmtpServer) -> collections.Counter[str]:
    with sink.recorder.lock:
        data = [r.data for r in sink.recorder.received]
    return collections.Counter(_message_id(d) for d in data)


def _message_id(data: bytes) -> str:
    match = re.search(rb"^Message-ID:\s*(\S+)", data, re.MULTILINE | re.IGNORECASE)
    return match.group(1).decode() if match else ""


def counts(store: SqlStore) -> dict[OutboxState, int]:
    return store.outbox_counts()


def run_once(config: Path, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*FEEDPIPE, "run", "--once"], cwd=REPO, env=env_for(config), capture_output=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def test_sigterm_during_dispatch_exits_0_and_loses_nothing(
    tmp_path: Path, sqlite_url: str, procs: list[subprocess.Popen[bytes]], sink: SmtpServer
) -> None:
    url = sqlite_url
    store = fill(tmp_path, url, 400)
    assert isinstance(sink.recorder, SlowHandler)
    sink.recorder.delay = 0.01
    config = smtp_config(tmp_path, url, sink.port, batch=25)
    log = tmp_path / "worker.log"
    proc = start_worker(config, log)
    procs.append(proc)
    wait_for(lambda: len(sink.recorder.received) >= 60, 20)
    started = time.monotonic()
    assert stop(proc) == 0, log.read_text()
    assert time.monotonic() - started < 10  # shutdown_timeout
    assert log_has(log, "event=worker.stopped clean=true")
    after = counts(store)
    assert after[OutboxState.SENDING] == 0  # in-flight batches finished
    assert after[OutboxState.SENT] == len(sink.recorder.received) < 400  # stopped early
    assert after[OutboxState.QUEUED] == 400 - after[OutboxState.SENT]
    finish = run_once(config)
    assert finish.returncode == 0, finish.stderr.decode()
    ids = received_ids(sink)
    assert len(ids) == 400 and set(ids.values()) == {1}  # every message, exactly once
    store.close()


def test_a_second_signal_exits_at_once_and_the_outbox_keeps_everything(
    tmp_path: Path, sqlite_url: str, procs: list[subprocess.Popen[bytes]], sink: SmtpServer
) -> None:
    url = sqlite_url
    store = fill(tmp_path, url, 300)
    assert isinstance(sink.recorder, SlowHandler)
    sink.recorder.delay = 1.0  # the messages in flight hold the graceful stop up
    config = smtp_config(tmp_path, url, sink.port, batch=50, lease=1)
    proc = start_worker(config, tmp_path / "worker.log")
    procs.append(proc)
    wait_for(lambda: counts(store)[OutboxState.SENDING] > 0, 20)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(3) == 128 + signal.SIGTERM
    time.sleep(1.1)  # the lease of the abandoned batch runs out
    sink.recorder.delay = 0.0
    finish = run_once(config)
    assert finish.returncode == 0, finish.stderr.decode()
    ids = received_ids(sink)
    assert len(ids) == 300  # nothing lost
    window = 4  # one per connection (not the claimed batches, not a recording group)
    assert sum(ids.values()) - 300 <= window
    assert counts(store)[OutboxState.SENT] == 300
    store.close()


# --- PostgreSQL ------------------------------------------------------------------------------


def leader_pid(store: SqlStore) -> int | None:
    holder = store.leader_lock_holder()
    match = re.search(r":(\d+)$", holder or "")
    return int(match.group(1)) if match else None


def start_workers(config: Path, tmp_path: Path, n: int) -> list[subprocess.Popen[bytes]]:
    return [start_worker(config, tmp_path / f"w{i}.log") for i in range(n)]


def stop_all(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    """SIGTERM to every worker at once, then their exit codes."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    return [proc.wait(15) for proc in procs]


@pytest.mark.postgres
def test_one_leader_among_three_and_a_new_one_within_10_s_after_kill_9(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]], pg_url: str
) -> None:
    posts = tmp_path / "posts"
    posts.mkdir()
    config = write_config(tmp_path, posts, pg_url)
    store = SqlStore.open(pg_url)
    workers = start_workers(config, tmp_path, 3)
    procs.extend(workers)
    try:
        first = wait_for(lambda: leader_pid(store), 20)
        time.sleep(2.5)  # every follower has tried at least once more
        logs = [(tmp_path / f"w{i}.log").read_text() for i in range(3)]
        assert sum(text.count("event=leader.elected") for text in logs) == 1
        assert first in {p.pid for p in workers}
        os.kill(first, signal.SIGKILL)
        killed = time.monotonic()
        second = wait_for(lambda: (pid := leader_pid(store)) not in (None, first) and pid, 10)
        failover = time.monotonic() - killed
        assert second in {p.pid for p in workers} - {first}
        print(f"failover: {failover:.2f} s")
    finally:
        codes = stop_all(workers)
        store.close()
    assert [c for p, c in zip(workers, codes, strict=True) if p.pid != first] == [0, 0]


@pytest.mark.postgres
def test_three_workers_deliver_5000_messages_exactly_once(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]], pg_url: str, sink: SmtpServer
) -> None:
    store = fill(tmp_path, pg_url, 5000)
    # A short lease: the dispatchers renew what they hold, so it never runs out while sending.
    config = smtp_config(tmp_path, pg_url, sink.port, batch=100, lease=3)
    workers = start_workers(config, tmp_path, 3)
    procs.extend(workers)
    try:
        wait_for(lambda: counts(store)[OutboxState.SENT] == 5000, 90, step=0.5)
    finally:
        codes = stop_all(workers)
        store.close()
    assert codes == [0, 0, 0]
    ids = received_ids(sink)
    assert len(ids) == 5000 and set(ids.values()) == {1}
    senders = [_sent_in_log(tmp_path / f"w{i}.log") for i in range(3)]
    assert sum(senders) == 5000 and sum(1 for s in senders if s) >= 2  # they shared the work


def _sent_in_log(log: Path) -> int:
    return sum(int(n) for n in re.findall(r"event=dispatch .*?\bsent=(\d+)", log.read_text()))


@pytest.mark.postgres
def test_a_dispatcher_killed_mid_batch_has_its_batch_finished_by_the_others(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]], pg_url: str, sink: SmtpServer
) -> None:
    store = fill(tmp_path, pg_url, 1500)
    assert isinstance(sink.recorder, SlowHandler)
    sink.recorder.delay = 0.005
    config = smtp_config(tmp_path, pg_url, sink.port, batch=50, lease=2)
    workers = start_workers(config, tmp_path, 3)
    procs.extend(workers)
    try:
        victim, batch = wait_for(lambda: _someone_sending(store, workers), 30, step=0.02)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(5)
        wait_for(lambda: counts(store)[OutboxState.SENT] == 1500, 90, step=0.5)
        finished = _states(store, batch)
        attempts = _attempts(store, batch)
        owners = _owners(store, batch)
    finally:
        codes = stop_all([p for p in workers if p is not victim])
        store.close()
    assert codes == [0, 0]
    assert set(finished.values()) == {OutboxState.SENT.value}
    assert set(attempts.values()) == {1}  # the crash is no delivery attempt
    assert not owners  # every row finished
    ids = received_ids(sink)
    assert len(ids) == 1500  # nothing lost
    window = 4  # one per connection of the killed worker
    assert sum(ids.values()) - 1500 <= window


def _someone_sending(
    store: SqlStore, procs: list[subprocess.Popen[bytes]]
) -> tuple[subprocess.Popen[bytes], list[int]] | None:
    by_pid = {p.pid: p for p in procs}
    stmt = sa.text("SELECT id, lease_owner FROM outbox WHERE lease_owner IS NOT NULL")
    with store.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    for pid, proc in by_pid.items():
        ids = [r.id for r in rows if r.lease_owner and f":{pid}:" in r.lease_owner]
        if len(ids) >= 10:
            return proc, ids
    return None


def _states(store: SqlStore, ids: list[int]) -> dict[int, str]:
    stmt = sa.text("SELECT id, state FROM outbox WHERE id = ANY(:ids)")
    with store.engine.connect() as conn:
        return {r.id: r.state for r in conn.execute(stmt, {"ids": ids})}


def _attempts(store: SqlStore, ids: list[int]) -> dict[int, int]:
    stmt = sa.text("SELECT id, attempts FROM outbox WHERE id = ANY(:ids)")
    with store.engine.connect() as conn:
        return {r.id: r.attempts for r in conn.execute(stmt, {"ids": ids})}


def _owners(store: SqlStore, ids: list[int]) -> dict[int, str]:
    stmt = sa.text(
        "SELECT id, lease_owner FROM outbox WHERE id = ANY(:ids) AND lease_owner IS NOT NULL"
    )
    with store.engine.connect() as conn:
        return {r.id: r.lease_owner for r in conn.execute(stmt, {"ids": ids})}
