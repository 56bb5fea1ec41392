"""Chaos: `feedpipe send` killed with SIGKILL at random moments over a real SMTP sink that logs
every Message-ID, on SQLite and PostgreSQL; a slow throttled send; the hour budget across runs.

Bounded: a few thousand messages, a handful of kills, leases of a second or two. The figures
of longer runs come from benchmarks/chaos.py.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feedpipe.model import OutboxState
from feedpipe.store import Store
from tests.chaos_helpers import (
    LocalServer,
    Recorder,
    counts,
    fill,
    id_sink,
    send_config,
    start_send,
)

MESSAGES = 1200
KILLS = 4
CONNECTIONS = 4
WINDOW = CONNECTIONS  # accepted but unrecorded at most, per kill: one per connection
LEASE = 1.0
DEADLINE = 60.0  # seconds any one wait may take on a loaded machine


@pytest.fixture
def sink() -> Iterator[tuple[LocalServer, Recorder]]:
    with id_sink() as found:
        yield found


def wait_until(done: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll until `done()`; False if `proc` ended first."""
    deadline = time.monotonic() + DEADLINE
    while not done():
        if proc is not None and proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
    return True


def send_until_done(config: Path, url: str, total: int) -> None:
    """Run `feedpipe send` until every message is sent (leases of killed runs run out)."""
    for _ in range(20):
        proc = start_send(config)
        out, _ = proc.communicate(timeout=DEADLINE)
        assert proc.returncode == 0, out.decode()
        if counts(url)[OutboxState.SENT] == total:
            return
        time.sleep(LEASE)
    raise AssertionError(f"not done: {counts(url)}")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7])
def test_random_kills_of_send_lose_nothing_and_repeat_at_most_what_was_in_flight(
    seed: int, tmp_path: Path, store_url: str, sink: tuple[LocalServer, Recorder]
) -> None:
    controller, recorder = sink
    expected = fill(tmp_path, store_url, MESSAGES)
    config = send_config(
        tmp_path, store_url, controller.port,
        batch_size=200, lease_seconds=LEASE, smtp_concurrency=CONNECTIONS,
    )  # fmt: skip
    rng = random.Random(seed)
    kills, sending_at_kill = 0, []
    for _ in range(KILLS):
        target = recorder.count + rng.randrange(20, MESSAGES // (KILLS + 1))
        proc = start_send(config)
        try:
            reached = wait_until(lambda t=target: recorder.count >= t, proc)  # type: ignore[misc]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        if reached:
            kills += 1
            sending_at_kill.append(counts(store_url)[OutboxState.SENDING])
        time.sleep(LEASE * 1.2)  # the killed run's leases run out
    send_until_done(config, store_url, MESSAGES)

    received = recorder.counts()
    duplicates = recorder.duplicates()
    print(f"{kills} kills, {duplicates} duplicates, sending at each kill {sending_at_kill}")
    assert set(received) == expected  # nothing lost
    assert counts(store_url)[OutboxState.SENT] == MESSAGES  # every row finished as sent
    assert kills >= 1
    # each kill leaves at most WINDOW rows `sending`; a later run resends them when its batch
    # reaches them, so a kill before that still finds them
    assert all(n <= (i + 1) * WINDOW for i, n in enumerate(sending_at_kill)), sending_at_kill
    assert duplicates <= kills * WINDOW  # never the claimed batches
    with Store.open(store_url) as store:
        attempts = {a for s in store.subscribers() for _, _, a, _ in store.outbox_messages(s.id)}
    assert attempts == {1}  # a crash is no delivery attempt


@pytest.mark.slow
def test_a_slow_throttled_send_never_reclaims_its_own_messages(
    tmp_path: Path, sqlite_url: str, sink: tuple[LocalServer, Recorder]
) -> None:
    controller, recorder = sink
    total = 30
    expected = fill(tmp_path, sqlite_url, total)
    # a batch takes 4 s to go out at 5/s, twice the lease: only renewal keeps it
    config = send_config(
        tmp_path, sqlite_url, controller.port,
        batch_size=20, lease_seconds=2.0, smtp_max_per_second=5.0,
    )  # fmt: skip
    proc = start_send(config)
    out, _ = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 0, out.decode()
    received = recorder.counts()
    assert set(received) == expected and set(received.values()) == {1}  # 0 duplicates
    assert counts(sqlite_url)[OutboxState.SENT] == total


@pytest.mark.slow
def test_the_hour_budget_holds_across_two_send_runs(
    tmp_path: Path, store_url: str, sink: tuple[LocalServer, Recorder]
) -> None:
    controller, recorder = sink
    fill(tmp_path, store_url, 60)
    config = send_config(tmp_path, store_url, controller.port, smtp_max_per_hour=30)
    outputs = []
    for _ in range(2):
        proc = start_send(config)
        out, _ = proc.communicate(timeout=DEADLINE)
        outputs.append(out.decode())
    assert recorder.count == 30, outputs  # not 60: the budget is the store's, not the run's
    assert len(set(recorder.ids)) == 30
    left = counts(store_url)
    assert (left[OutboxState.SENT], left[OutboxState.QUEUED] + left[OutboxState.RETRY]) == (30, 30)
    assert "max_per_hour = 30 reached" in outputs[0]  # the rest waits until the hour frees up
