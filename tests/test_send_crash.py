"""Crash test: a dispatcher process killed with SIGKILL mid-run, restarted; nothing is lost.

A real aiosmtpd server on 127.0.0.1 records every Message-ID; a separate process sends 2,000
queued digests through feedpipe's SMTP transport and is killed at a seeded random point.
After a restart every subscriber has their digest, and the duplicates are at most the messages
accepted but not yet recorded at the kill: the connections plus one recording group, never the
claimed batches.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedpipe.model import OutboxState
from feedpipe.store import Store
from tests.chaos_helpers import LocalServer, Recorder, id_sink
from tests.outbox_helpers import add_subscribers, edition, queue, settings

MESSAGES = 2000
BATCH = 50
CONCURRENCY = 2  # batches in flight, and SMTP connections
LEASE_SECONDS = 1.0
WORKER = Path(__file__).with_name("crash_worker.py")
REPO = Path(__file__).resolve().parents[1]
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^\r\n]*>)", re.IGNORECASE | re.MULTILINE)


@pytest.fixture
def server() -> Iterator[tuple[LocalServer, Recorder]]:
    with id_sink() as sink:
        yield sink


def worker(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [url, str(port), str(BATCH), str(CONCURRENCY), str(LEASE_SECONDS)]
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args], env=env, stdout=subprocess.PIPE, cwd=REPO
    )


def wait_for(recorder: Recorder, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while recorder.count < count:
        assert proc.poll() is None, "the worker ended before the kill point"
        assert time.monotonic() < deadline, f"only {recorder.count} of {count} arrived"
        time.sleep(0.002)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_killed_dispatcher_loses_nothing_and_repeats_at_most_what_was_in_flight(
    seed: int, tmp_path: Path, sqlite_url: str, server: tuple[LocalServer, Recorder]
) -> None:
    controller, recorder = server
    url = sqlite_url
    with Store.open(url) as store:
        subs = add_subscribers(store, MESSAGES)
        queue(store, edition(settings(tmp_path, url)), subs, datetime.now(UTC))
        expected = {m[3] for i in subs for m in store.outbox_messages(i)}
    kill_at = random.Random(seed).randrange(100, MESSAGES - 100)

    first = worker(url, controller.port)
    try:
        wait_for(recorder, kill_at, first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with Store.open(url) as store:
        in_flight = store.outbox_counts()[OutboxState.SENDING]
    received_at_kill = recorder.count

    second = worker(url, controller.port)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out

    counts = Counter(recorder.ids)
    duplicates = sum(n - 1 for n in counts.values())
    with Store.open(url) as store:
        final = store.outbox_counts()
    print(
        f"seed {seed}: killed after {received_at_kill} received, {in_flight} in flight; "
        f"{duplicates} duplicates; {len(recorder.ids)} received in all"
    )
    assert set(counts) == expected  # every subscriber's digest arrived
    assert final[OutboxState.SENT] == MESSAGES
    window = CONCURRENCY  # one per connection: its last answer is committed before the next
    assert in_flight <= window and duplicates <= window
