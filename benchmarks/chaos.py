"""The trials of issue 15 against aiosmtpd sinks that log every Message-ID, on this machine.

1. SQLite, 10,000 digests, `feedpipe run` killed with SIGKILL at random moments until done
   (20–40 kills a trial): lost, duplicates (per trial, per kill on average, and the most one
   kill caused), copies of one message, rows `sending` at a kill.
2. PostgreSQL, 3 workers, the leader killed with SIGKILL mid-dispatch: lost, duplicates, the
   new leader's election and the takeover (first claim of the dead worker's rows by another).
3. No crash, slow sending: batch 20, max_per_second = 2, lease 4 s, 60 messages: deliveries.
4. max_per_hour = 30, 60 subscribers due, two `feedpipe send` runs: sent.

Prints one table; asserts nothing. Loopback only, bounded.
Usage: python benchmarks/chaos.py [--trials 10] [--pg-trials 3] [--messages 10000]
"""

from __future__ import annotations

import argparse
import bisect
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.chaos_helpers import (  # noqa: E402
    Recorder,
    counts,
    fill,
    id_sink,
    send_config,
    start_send,
)
from tests.worker_helpers import env_for  # noqa: E402

from feedpipe.model import OutboxState  # noqa: E402
from feedpipe.store import Store  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CONNECTIONS = 8
WORKER = (
    "[worker]\nplan_seconds = 60\ndispatch_seconds = 0.2\nwatch = false\nshutdown_timeout = 5\n"
)


@dataclass
class Trial:
    lost: int
    duplicates: int
    max_copies: int
    kills: int
    max_sending: int = 0
    elected: float | None = None
    takeover: float | None = None
    worst_kill: int = 0  # the most duplicates one kill caused
    uncrashed: int = 0  # repeats with no kill between the copies (should be none)


def worker_config(root: Path, url: str, port: int, lease: float, **email: object) -> Path:
    config = send_config(
        root, url, port, batch_size=200, lease_seconds=lease,
        smtp_concurrency=CONNECTIONS, **email,
    )  # fmt: skip
    config.write_text(config.read_text() + WORKER)
    return config


def start_run(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "feedpipe", "run"], cwd=REPO, env=env_for(config),
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait(check: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def _reached(
    rec: Recorder, target: int, proc: subprocess.Popen[bytes], total: int
) -> Callable[[], bool]:
    """The sink got `target` messages, or the process ended, or everything has arrived."""
    return lambda: rec.count >= target or proc.poll() is not None or len(rec.counts()) >= total


def summary(expected: set[str], recorder: Recorder, marks: list[int]) -> Trial:
    """Lost, duplicates, copies. `marks`: the sink's count at each kill (taken once the dead
    process's last bytes have arrived), cutting the log into epochs. A copy followed by
    another in a later epoch was not recorded when its process died: that repeat is charged to
    the kill ending the earlier copy's epoch; a repeat within one epoch had no crash."""
    received = recorder.counts()
    lost = len(expected - set(received))
    per_kill = [0] * len(marks)
    uncrashed = 0
    last_epoch: dict[str, int] = {}
    with recorder.lock:
        ids = list(recorder.ids)
    for index, message_id in enumerate(ids):
        epoch = bisect.bisect_right(marks, index)
        before = last_epoch.get(message_id)
        if before is not None:
            if before < epoch:
                per_kill[before] += 1
            else:
                uncrashed += 1
        last_epoch[message_id] = epoch
    trial = Trial(lost, recorder.duplicates(), max(received.values(), default=0), len(marks))
    trial.worst_kill, trial.uncrashed = max(per_kill, default=0), uncrashed
    return trial


def mark(recorder: Recorder) -> int:
    """The sink's count once what a killed process sent has arrived."""
    time.sleep(0.2)
    return recorder.count


def sqlite_trial(seed: int, messages: int) -> Trial:
    """`feedpipe run` killed at random moments until every message is sent."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="fp-chaos-") as tmp, id_sink() as (server, rec):
        root = Path(tmp)
        url = f"sqlite:///{root / 'fp.db'}"
        expected = fill(root, url, messages)
        config = worker_config(root, url, server.port, lease=2.0)
        kills, sending, marks = 0, [], []
        planned = rng.randint(20, 40)
        while counts(url)[OutboxState.SENT] < messages:
            proc = start_run(config, root / "run.log")
            if kills < planned:
                # kill mid-send: after a random share of what is left, then a random instant
                target = rec.count + rng.randrange(1, max(2, 2 * messages // planned))
                wait(_reached(rec, target, proc, messages), 120, 0.05)
                time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                marks.append(mark(rec))
                kills += 1
                sending.append(counts(url)[OutboxState.SENDING])
                continue
            wait(lambda: counts(url)[OutboxState.SENT] >= messages, 300, 0.2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        trial = summary(expected, rec, marks)
        trial.max_sending = max(sending, default=0)
        return trial


def pg_url(schema: str) -> str:
    return f"{PG_ADMIN}?options=-csearch_path%3D{schema}"


def pg_trial(messages: int) -> Trial:
    """Three workers on PostgreSQL; the leader is killed with SIGKILL mid-dispatch."""
    schema = "chaos_" + uuid.uuid4().hex[:10]
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        with tempfile.TemporaryDirectory(prefix="fp-chaos-") as tmp, id_sink() as (server, rec):
            return _pg_trial(Path(tmp), pg_url(schema), server.port, rec, messages)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _leader_pid(store: Store) -> int | None:
    holder = store.leader_lock_holder() or ""
    tail = holder.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


def _held_by(store: Store, pid: int) -> set[int]:
    stmt = sa.text("SELECT id FROM outbox WHERE lease_owner LIKE :owner AND state <> 'sent'")
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        return set(conn.execute(stmt, {"owner": f"%:{pid}:%"}).scalars())


def _pg_trial(root: Path, url: str, port: int, rec: Recorder, messages: int) -> Trial:
    expected = fill(root, url, messages)
    config = worker_config(root, url, port, lease=2.0)
    procs = [start_run(config, root / f"w{i}.log") for i in range(3)]
    elected = takeover = None
    marks: list[int] = []
    try:
        with Store.open(url) as store:
            wait(lambda: _leader_pid(store) is not None and rec.count > messages // 5, 120)
            leader = _leader_pid(store)
            victim = next(p for p in procs if p.pid == leader)
            held = _held_by(store, victim.pid)
            killed = time.monotonic()
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            marks.append(mark(rec))
            if wait(lambda: _leader_pid(store) not in (None, leader), 30, 0.005):
                elected = time.monotonic() - killed
            if held and wait(lambda: not (_held_by(store, leader or 0) & held), 60, 0.005):
                takeover = time.monotonic() - killed
            wait(lambda: counts(url)[OutboxState.SENT] >= messages, 300, 0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
    trial = summary(expected, rec, marks)
    trial.elected, trial.takeover = elected, takeover
    return trial


def slow_trial() -> tuple[int, int]:
    """Batch 20, max_per_second = 2, lease 4 s, 60 messages, no crash: (deliveries, messages)."""
    with tempfile.TemporaryDirectory(prefix="fp-chaos-") as tmp, id_sink() as (server, rec):
        root = Path(tmp)
        url = f"sqlite:///{root / 'fp.db'}"
        fill(root, url, 60)
        config = send_config(
            root, url, server.port, batch_size=20, lease_seconds=4.0, smtp_max_per_second=2.0
        )
        start_send(config).communicate(timeout=300)
        return rec.count, len(rec.counts())


def hourly_trial() -> int:
    """max_per_hour = 30, 60 due, two `feedpipe send` runs: how many were sent."""
    with tempfile.TemporaryDirectory(prefix="fp-chaos-") as tmp, id_sink() as (server, rec):
        root = Path(tmp)
        url = f"sqlite:///{root / 'fp.db'}"
        fill(root, url, 60)
        config = send_config(root, url, server.port, smtp_max_per_hour=30)
        for _ in range(2):
            start_send(config).communicate(timeout=120)
        return rec.count


def span(values: list[int] | list[float], fmt: str = "{:,}") -> str:
    if not values:
        return "–"
    low, high = min(values), max(values)
    return fmt.format(low) if low == high else f"{fmt.format(low)} – {fmt.format(high)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--pg-trials", type=int, default=3)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    started = time.monotonic()
    sqlite: list[Trial] = []
    pg: list[Trial] = []
    for seed in range(args.trials):
        sqlite.append(sqlite_trial(seed, args.messages))
        print(f"sqlite trial {seed}: {sqlite[-1]}", flush=True)
    for n in range(args.pg_trials):
        pg.append(pg_trial(args.messages // 2))
        print(f"pg trial {n}: {pg[-1]}", flush=True)
    deliveries, distinct = slow_trial()
    hourly = hourly_trial()
    window = CONNECTIONS  # one per connection (outbox.inflight)
    per_kill = [t.duplicates / t.kills for t in sqlite if t.kills]
    print("\n| trial | result |\n|---|---|")
    print(
        f"| SQLite, {args.messages:,} digests, `feedpipe run` SIGKILLed at random until done "
        f"({span([t.kills for t in sqlite])} kills a trial), {len(sqlite)} trials | "
        f"{span([t.lost for t in sqlite])} lost; {span([t.duplicates for t in sqlite])} "
        f"duplicates per trial ({span(per_kill, '{:.1f}')} per kill on average, at most "
        f"{max((t.worst_kill for t in sqlite), default=0)} after one kill; {CONNECTIONS} "
        f"connections, bound {window}; {sum(t.uncrashed for t in sqlite)} with no kill "
        "between copies); "
        f"at most {max((t.max_copies for t in sqlite), default=0)} copies of one message; "
        f"at most {max((t.max_sending for t in sqlite), default=0)} rows `sending` at a kill |"
    )
    elected = [t.elected for t in pg if t.elected is not None]
    takeover = [t.takeover for t in pg if t.takeover is not None]
    print(
        f"| PostgreSQL, 3 workers, {args.messages // 2:,} digests, leader SIGKILLed "
        f"mid-dispatch, {len(pg)} trials | {span([t.lost for t in pg])} lost; "
        f"{span([t.duplicates for t in pg])} duplicates per kill "
        f"({sum(t.uncrashed for t in pg)} with no kill between copies); new leader after "
        f"{span(elected, '{:.2f}')} s; its rows claimed by others after "
        f"{span(takeover, '{:.2f}')} s (lease 2 s) |"
    )
    print(
        f"| no crash, slow sending: batch 20, max_per_second = 2, lease 4 s | "
        f"{deliveries} deliveries of {distinct} messages |"
    )
    print(f"| max_per_hour = 30, 60 due, two `send` runs | {hourly} sent |")
    if takeover:
        print(f"\ntakeover median {statistics.median(takeover):.2f} s")
    print(f"\n({time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
