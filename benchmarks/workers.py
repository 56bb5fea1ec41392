"""Worker benchmark: save→feed latency in watch mode, failover, and dispatch throughput of
1, 2 and 4 `feedpipe run` processes on PostgreSQL into Postfix's smtp-sink vs smtplib."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

import sqlalchemy as sa

import dispatch as bench_dispatch  # benchmarks/dispatch.py: smtp-sink set-up and the baseline
from feedpipe.model import (
    Frequency,
    NewEdition,
    NewSubscriber,
    OutboxFill,
    OutboxState,
    Recipient,
    Schedule,
    SubscriberStatus,
)
from feedpipe.outbox.fill import new_messages
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.store import Store
from feedpipe.worker.assemble import assemble

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "blog-002"
PG = os.environ.get("FEEDPIPE_BENCH_PG", "postgresql+psycopg://127.0.0.1:5432/test")
SAVES = 20
FAILOVERS = 5
MESSAGES = 20_000
WORKER_COUNTS = (1, 2, 4)
SENDER = "digest@blog.example.com"


def config(root: Path, posts: Path, store: str, extra: str = "") -> Path:
    text = (
        '[site]\ntitle = "Bench"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{posts}"\n[store]\nurl = "{store}"\n'
        f'[feeds]\noutput_dir = "{root / "out"}"\n{extra}\n'
    )
    path = root / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def wait(check: Callable[[], object], timeout: float, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout} s")
        time.sleep(step)


# --- save → feed ------------------------------------------------------------------------------


def save_to_feed(root: Path, debounce: float) -> list[float]:
    """Seconds from writing a new post file to its slug being in its category feed (watch)."""
    posts = root / "posts"
    shutil.copytree(CORPUS, posts)
    store = f"sqlite:///{root / 'fp.db'}"
    cfg = config(root, posts, store, f"[worker]\ndebounce_seconds = {debounce}\n")
    worker = assemble(Feedpipe.from_settings(load_settings(cfg)))
    worker.start()
    feed = root / "out" / "category" / "bench" / "feed.xml"
    try:
        wait(lambda: (root / "out" / "feed.xml").exists(), 30)
        samples = []
        for n in range(SAVES):
            slug = f"bench-post-{n}"
            text = (
                f'---\ntitle: "Bench {n}"\nslug: {slug}\ndate: 2026-11-20T09:00:00Z\n'
                f"categories: [Bench]\n---\nBody {n}.\n"
            )
            started = time.perf_counter()
            (posts / f"{slug}.md").write_text(text, encoding="utf-8")

            def in_feed(s: str = slug) -> bool:
                return feed.exists() and s in feed.read_text("utf-8")

            wait(in_feed, 10)
            samples.append(time.perf_counter() - started)
            time.sleep(0.2)
    finally:
        worker.stop(10)
    return samples


# --- PostgreSQL helpers -------------------------------------------------------------------------


@contextmanager
def pg_schema() -> Iterator[str]:
    engine = sa.create_engine(PG)
    schema = "bench_" + uuid.uuid4().hex[:10]
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env["FEEDPIPE_CONFIG"] = str(cfg)
    return subprocess.Popen(
        [sys.executable, "-m", "feedpipe", "run"], cwd=REPO, env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def leader_pid(store: Store) -> int | None:
    match = re.search(r":(\d+)$", store.leader_lock_holder() or "")
    return int(match.group(1)) if match else None


# --- failover ---------------------------------------------------------------------------------


def failover(root: Path) -> list[float]:
    """Seconds from kill -9 of the leader until another worker holds the leader lock."""
    samples = []
    posts = root / "posts"
    posts.mkdir(exist_ok=True)
    with pg_schema() as url:
        cfg = config(root, posts, url)
        store = Store.open(url)
        procs = [start(cfg, root / f"f{i}.log") for i in range(3)]
        try:
            for _ in range(FAILOVERS):
                wait(lambda: leader_pid(store), 30, 0.01)
                dead = leader_pid(store)
                assert dead is not None
                os.kill(dead, signal.SIGKILL)
                killed = time.perf_counter()

                def moved(d: int = dead) -> bool:
                    return leader_pid(store) not in (None, d)

                wait(moved, 15, 0.01)
                samples.append(time.perf_counter() - killed)
                procs.append(start(cfg, root / "f-new.log"))  # keep three alive
        finally:
            stop_all(procs)
            store.close()
    return samples


# --- throughput -------------------------------------------------------------------------------


def fill_outbox(store: Store, count: int) -> int:
    """`count` queued 25 KB digests (one stored edition), subscribers not due for hours."""
    now = datetime.now(UTC)
    schedule = Schedule(Frequency.DAILY, 0, dtime((now.hour + 12) % 24, 0), "UTC")
    rows = [
        NewSubscriber(f"reader{n}@example.org", None, SubscriberStatus.ACTIVE, (), schedule, now)
        for n in range(count)
    ]
    store.import_subscribers(rows)
    template = bench_dispatch.edition_template()
    key = uuid.uuid4().hex * 2
    edition = NewEdition(key, "Bench digest", (1,), template.dump(), now)
    recipients = [
        Recipient(s.id, s.email, None, f"https://news.example.com/u/{s.id}", "https://n.example/p")
        for s in store.subscribers()
    ]
    messages = tuple(new_messages(key, recipients, SENDER))
    store.fill_outbox(lambda: OutboxFill(now, (edition,), messages))
    return len(template.data)


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by these processes."""
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(stat[11]) + int(stat[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def throughput(root: Path, port: int, workers: int) -> tuple[float, int, float, float]:
    """Messages per second of `workers` processes draining MESSAGES queued digests."""
    posts = root / "posts"
    posts.mkdir(exist_ok=True)
    with pg_schema() as url:
        store = Store.open(url)
        size = fill_outbox(store, MESSAGES)
        email = (
            f'[email]\nfrom_address = "{SENDER}"\ntransport = "smtp"\nbatch_size = 200\n'
            f"[email.smtp]\nport = {port}\nconcurrency = 8\n"
            "[worker]\ndispatch_seconds = 0.2\nplan_seconds = 600\nwatch = false\n"
        )
        cfg = config(root, posts, url, email)
        procs = [start(cfg, root / f"t{workers}-{i}.log") for i in range(workers)]
        try:
            sent: Callable[[], int] = lambda: store.outbox_counts()[OutboxState.SENT]  # noqa: E731
            wait(lambda: sent() > 0, 60, 0.01)
            first, at_first = sent(), time.perf_counter()
            busy0, cpu0 = cpu_ticks(), process_cpu([p.pid for p in procs])
            wait(lambda: sent() >= MESSAGES, 300, 0.05)
            elapsed = time.perf_counter() - at_first
            busy1, cpu1 = cpu_ticks(), process_cpu([p.pid for p in procs])
            rate = (MESSAGES - first) / elapsed
        finally:
            stop_all(procs)
            store.close()
    machine = (busy1[0] - busy0[0]) / max(busy1[1] - busy0[1], 1)
    return rate, size, machine, (cpu1 - cpu0) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-pg", action="store_true", help="only the save→feed latency")
    args = parser.parse_args()
    started = time.monotonic()
    for debounce in (0.5, 0.05):  # the default, and close to none
        with tempfile.TemporaryDirectory() as tmp:
            samples = save_to_feed(Path(tmp) / "watch", debounce)
        print(
            f"save → category feed (watch, debounce {debounce} s, {SAVES} saves of "
            f"{CORPUS.name}): median {statistics.median(samples) * 1000:.0f} ms, "
            f"max {max(samples) * 1000:.0f} ms",
            flush=True,
        )
    if args.skip_pg:
        return
    with tempfile.TemporaryDirectory() as tmp:
        times = failover(Path(tmp))
    print(
        f"failover after kill -9 of the leader ({FAILOVERS}×, 3 workers): median "
        f"{statistics.median(times):.2f} s, max {max(times):.2f} s",
        flush=True,
    )
    if not bench_dispatch.ensure_sink():
        raise SystemExit("no /usr/sbin/smtp-sink: apt-get install postfix")
    with bench_dispatch.smtp_sink() as port:
        base = bench_dispatch.run_child(
            "--child", "baseline", "--port", str(port), "--count", "10000"
        )
        base_rate = bench_dispatch.rate(base)
        print(f"baseline smtplib, 1 connection, {base['bytes']} B: {base_rate:.0f}/s", flush=True)
        for workers in WORKER_COUNTS:
            with tempfile.TemporaryDirectory() as tmp:
                rate, size, machine, cores = throughput(Path(tmp), port, workers)
            print(
                f"feedpipe run × {workers} on PostgreSQL, {MESSAGES} × {size} B: {rate:.0f}/s "
                f"({rate / base_rate:.0%} of baseline); workers used {cores:.2f} cores, "
                f"machine {machine:.0%} busy ({os.cpu_count()} cores)",
                flush=True,
            )
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
