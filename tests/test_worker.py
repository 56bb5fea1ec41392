"""Worker in-process: scheduling, overlap, watch, logs, run records, metrics, DST, run --once."""

from __future__ import annotations

import email
import io
import itertools
import json
import logging
import shutil
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from msgspec.structs import replace

from feedpipe.cli import cli
from feedpipe.clock import FixedClock, SystemClock
from feedpipe.errors import StoreError
from feedpipe.model import RunRecord, TermKind
from feedpipe.service import Feedpipe
from feedpipe.settings import WorkerSettings, load_settings
from feedpipe.store import Store, safe_url
from feedpipe.worker.assemble import assemble
from feedpipe.worker.jobs import StepResult
from feedpipe.worker.leader import PgLeader, SoleLeader, WorkerRefused
from feedpipe.worker.logs import (
    JsonFormatter,
    KeyValueFormatter,
    configure_logging,
    event,
)
from feedpipe.worker.metrics import WorkerMetrics
from feedpipe.worker.runner import Worker, WorkerParts
from feedpipe.worker.runs import RunLog
from feedpipe.worker.watch import Debouncer
from tests.helpers import post
from tests.worker_helpers import wait_for, worker_config

FAST = WorkerSettings(
    poll_seconds=60, plan_seconds=60, dispatch_seconds=60, debounce_seconds=0.05,
    shutdown_timeout=5, watch=False,
)  # fmt: skip


class FakeJobs:
    """Jobs that sleep and record when they ran (to check overlap and kicks)."""

    def __init__(self, seconds: float = 0.0, fail: str | None = None) -> None:
        self.seconds = seconds
        self.fail = fail
        self.spans: list[tuple[str, float, float]] = []
        self.batches = 3  # dispatch_some: batches left to send
        self.closed = False

    def _span(self, job: str) -> StepResult:
        start = time.monotonic()
        if self.fail:
            raise RuntimeError(self.fail)
        time.sleep(self.seconds)
        self.spans.append((job, start, time.monotonic()))
        return StepResult(job, time.monotonic() - start, {"n": 1})

    def sync_build(self) -> Sequence[StepResult]:
        return [self._span("sync"), StepResult("build", 0.0, {"written": 2})]

    def plan_fill(self) -> Sequence[StepResult]:
        return [self._span("plan")]

    def publish(self) -> Sequence[StepResult]:
        return []

    def dispatch_some(self, stop: Callable[[], bool]) -> Sequence[StepResult]:
        sent = 0
        while self.batches and not stop():
            time.sleep(self.seconds)
            self.batches -= 1
            sent += 10
        self.spans.append(("dispatch", 0, 0))
        return [StepResult("dispatch", 0.0, {"sent": sent, "batches": sent // 10})]

    def release(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def fake_worker(jobs: FakeJobs, store: Store | None = None, **kw: object) -> Worker:
    settings = replace(FAST, **kw)
    runs = RunLog(store) if store else None
    parts = WorkerParts(jobs, SoleLeader("test:1"), SystemClock(), settings, runs)
    return Worker(parts)


def test_sync_and_plan_never_overlap_and_a_kick_during_a_run_runs_again() -> None:
    jobs = FakeJobs(seconds=0.15)
    worker = fake_worker(jobs)
    worker.start()
    try:
        wait_for(lambda: len(jobs.spans) >= 3, 3)  # first sync, plan, dispatch
        before = sum(1 for s in jobs.spans if s[0] == "sync")
        worker.kick("sync_build")
        time.sleep(0.02)
        worker.kick("sync_build")  # while it runs: once more afterwards, never twice at once
        wait_for(lambda: sum(1 for s in jobs.spans if s[0] == "sync") >= before + 2, 3)
    finally:
        assert worker.stop(5)
    spans = sorted((s for s in jobs.spans if s[0] in ("sync", "plan")), key=lambda s: s[1])
    for (_, _, end), (_, start, _) in itertools.pairwise(spans):
        assert start >= end  # one at a time: sync, plan and sync again never overlap
    assert jobs.closed


def test_graceful_stop_ends_dispatch_between_batches() -> None:
    jobs = FakeJobs(seconds=0.2)
    jobs.batches = 100
    worker = fake_worker(jobs)
    worker.start()
    wait_for(lambda: jobs.batches < 99, 3)
    started = time.monotonic()
    assert worker.stop(5)
    assert time.monotonic() - started < 1.0
    assert jobs.batches > 50  # stopped taking new batches


def test_run_once_runs_every_job_and_dispatches_until_nothing_is_due(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    jobs = FakeJobs()
    worker = fake_worker(jobs, store)
    assert worker.run_once() == 0
    assert [s[0] for s in jobs.spans] == ["sync", "plan", "dispatch"]
    assert jobs.batches == 0
    runs = RunLog(store).last()
    assert set(runs) == {"sync", "build", "plan", "dispatch"}
    assert runs["dispatch"].counts == {"sent": 30, "batches": 3}
    assert all(r.outcome == "ok" and r.worker == "test:1" for r in runs.values())


def test_a_failing_job_is_recorded_without_secrets_and_keeps_the_last_success(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    log = RunLog(store)
    ok_at = datetime(2026, 1, 1, tzinfo=UTC)
    log.record(RunRecord("sync", "w", ok_at, 0.1, "ok", {"added": 1}))
    stream = io.StringIO()
    configure_logging("kv", "info", stream)
    jobs = FakeJobs(fail="cannot reach postgresql://feed:hunter2@db.example.com/feeds")
    worker = fake_worker(jobs, store)
    assert worker.run_once() == 1
    run = log.last()["sync"]
    assert run.outcome == "error" and run.last_ok_at == ok_at
    assert run.error and "hunter2" not in run.error and "***" in run.error
    assert "hunter2" not in stream.getvalue()
    assert "event=sync.failed" in stream.getvalue()


def test_log_lines_key_value_and_json_with_secrets_masked() -> None:
    url = "postgresql+psycopg://feed:s3cret@db.example.com:5432/feeds"
    assert safe_url(url) == "postgresql+psycopg://feed:***@db.example.com:5432/feeds"
    for formatter, parse in ((KeyValueFormatter(), None), (JsonFormatter(), json.loads)):
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        logger = logging.getLogger(f"feedpipe.test.{type(formatter).__name__}")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        event(logger, "sync", added=3, seconds=0.123456, store=url, note="two words")
        line = stream.getvalue()
        assert line.count("\n") == 1 and "s3cret" not in line
        if parse is None:
            assert "event=sync added=3 seconds=0.1235" in line and 'note="two words"' in line
        else:
            data = parse(line)
            assert data["event"] == "sync" and data["added"] == 3 and data["level"] == "info"


def test_debouncer_fires_once_per_burst() -> None:
    calls: list[float] = []
    debouncer = Debouncer(lambda: calls.append(time.monotonic()), 0.1)
    try:
        for _ in range(5):
            debouncer.poke()
            time.sleep(0.02)
        wait_for(lambda: calls, 2)
        time.sleep(0.3)
        assert len(calls) == 1
    finally:
        debouncer.close()


def test_metrics_endpoint_serves_counts_on_loopback() -> None:
    metrics = WorkerMetrics(lambda: {"queued": 4, "sent": 7})
    port = metrics.serve(0)
    try:
        at = datetime(2026, 1, 1, tzinfo=UTC)
        metrics.observe(StepResult("sync", 0.1, {"posts": 12}), at)
        metrics.observe(StepResult("build", 0.1, {"written": 5}), at)
        metrics.observe(StepResult("plan", 0.1, {"due": 3}), at)
        metrics.observe(StepResult("dispatch", 0.1, {"sent": 9, "failed": 1}), at)
        metrics.latency(0.02, 10)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    finally:
        metrics.close()
    for line in (
        "feedpipe_posts 12.0",
        "feedpipe_feeds_written_total 5.0",
        "feedpipe_digests_planned_total 3.0",
        'feedpipe_messages_total{outcome="sent"} 9.0',
        'feedpipe_outbox_messages{state="queued"} 4.0',
        "feedpipe_smtp_latency_seconds_count 10.0",
        'feedpipe_last_success_timestamp_seconds{job="plan"} 1.7672256e+09',
    ):
        assert line in text, line


def test_watch_a_saved_post_is_in_its_category_feed_within_2_seconds(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "first", categories="[Rust]")
    config = worker_config(tmp_path, posts, worker="watch = true")
    service = Feedpipe.from_settings(load_settings(config))
    worker = assemble(service)
    worker.start()
    try:
        wait_for(lambda: (tmp_path / "out" / "category" / "rust" / "feed.xml").exists(), 10)
        saved = time.monotonic()
        post(posts, "fresh-zig-post", categories="[Zig]", date="2026-02-01T09:00:00Z")
        feed = tmp_path / "out" / "category" / "zig" / "feed.xml"
        wait_for(lambda: feed.exists() and "fresh-zig-post" in feed.read_text("utf-8"), 2)
        latency = time.monotonic() - saved
    finally:
        assert worker.stop(10)
    assert latency < 2.0


class FakeLock:
    """A leader lock that is free once, then loses its connection on the second ping."""

    def __init__(self) -> None:
        self.pings = 0
        self.released = 0

    def try_acquire(self) -> bool:
        return True

    def ping(self) -> None:
        self.pings += 1
        if self.pings > 1:
            raise StoreError("store ping failed: server closed the connection")

    def release(self) -> None:
        self.released += 1

    def close(self) -> None:
        self.release()


def test_a_pg_leader_that_loses_the_store_steps_down(store: Store) -> None:
    lock = FakeLock()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    leader = PgLeader(store, lock, "w:1")
    assert leader.poll(now) and store.last_leader() == {"worker": "w:1", "since": now.isoformat()}
    assert leader.poll(now)
    assert not leader.poll(now) and not leader.is_leader and lock.released == 1


def test_second_worker_on_sqlite_is_refused(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "first")
    config = worker_config(tmp_path, posts)
    first = Feedpipe.from_settings(load_settings(config))
    worker = assemble(first)
    try:
        with pytest.raises(WorkerRefused, match="already running"):
            assemble(Feedpipe.from_settings(load_settings(config)))
        result = CliRunner().invoke(cli, ["--config", str(config), "run", "--once"])
        assert result.exit_code == 1
        assert "another feedpipe worker" in result.output
        assert "SQLite allows one worker" in result.output
    finally:
        worker.stop(5)
    result = CliRunner().invoke(cli, ["--config", str(config), "run", "--once"])
    assert result.exit_code == 0, result.output  # the lock went with the first worker


def _run_once(config: Path, now: str) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "run", "--once", "--now", now])
    assert result.exit_code == 0, result.output


def _emls(root: Path) -> list[Path]:
    return sorted((root / "eml").glob("*.eml")) if (root / "eml").exists() else []


@pytest.mark.parametrize(
    ("day1", "day2"),
    [
        # spring forward (29 March 2026): 08:00 Berlin is 07:00 UTC, then 06:00 UTC
        (("2026-03-28T06:59Z", "2026-03-28T07:00Z"), ("2026-03-29T05:59Z", "2026-03-29T06:00Z")),
        # fall back (25 October 2026): 08:00 Berlin is 06:00 UTC, then 07:00 UTC
        (("2026-10-24T05:59Z", "2026-10-24T06:00Z"), ("2026-10-25T06:59Z", "2026-10-25T07:00Z")),
    ],
)
def test_run_once_sends_at_0800_berlin_on_both_sides_of_a_dst_change(
    tmp_path: Path, sqlite_url: str, day1: tuple[str, str], day2: tuple[str, str]
) -> None:
    posts = tmp_path / "posts"
    config = worker_config(tmp_path, posts, sqlite_url)
    start = day1[0][:10] + "T00:00Z"
    runner = CliRunner()
    added = runner.invoke(
        cli,
        ["--config", str(config), "subscribers", "add", "reader@example.com", "--confirmed",
         "--timezone", "Europe/Berlin", "--time", "08:00", "--now", start],
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    for number, (before, at) in enumerate((day1, day2), start=1):
        post(posts, f"post-{number}", date=start.replace("00:00Z", "00:01:00Z"))  # after them
        _run_once(config, before)  # 07:59 local: syncs the post, nothing is due yet
        assert len(_emls(tmp_path)) == number - 1, before
        _run_once(config, at)  # 08:00 local: the digest goes out
        assert len(_emls(tmp_path)) == number, at
    with Store.open(sqlite_url) as store:
        plan = RunLog(store).last()["plan"]
    assert plan.counts["due"] == 1 and plan.started_at == datetime.fromisoformat(day2[1])


CORPUS_FOLDERS = ["blog-000", "blog-002"]


@pytest.mark.parametrize("folder", CORPUS_FOLDERS)
def test_run_once_on_the_corpus_end_to_end(
    tmp_path: Path, sqlite_url: str, corpus_dir: Path, folder: str
) -> None:
    posts = tmp_path / "posts"
    shutil.copytree(corpus_dir / folder, posts)
    config = worker_config(tmp_path, posts, sqlite_url)
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(cli, [*base, "sync", "--now", "2026-11-19T00:00Z"]).exit_code == 0
    with Store.open(sqlite_url) as store:
        names = [t.name for t in store.terms(TermKind.CATEGORY)]
    for address, extra in (
        ("all@example.com", []),
        ("one@example.com", ["--categories", names[0]]),
        ("weekly@example.com", ["--frequency", "weekly", "--weekday", "sun"]),
    ):
        args = [*base, "subscribers", "add", address, "--confirmed", "--timezone", "UTC"]
        added = runner.invoke(cli, [*args, "--time", "07:00", "--now", "2026-11-20T00:00Z", *extra])
        assert added.exit_code == 0, added.output
    # the blogger writes a new post: it is what the digests hold
    post(posts, "a-new-post", categories=f'["{names[0]}"]', date="2026-11-20T09:00:00Z")
    _run_once(config, "2026-11-21T07:00Z")  # a Saturday: the weekly reader waits
    out = tmp_path / "out"
    for name in ("feed.xml", "atom.xml", "feed.json", "feeds.opml"):
        assert (out / name).stat().st_size > 0
    assert len(list(out.glob("category/*/feed.xml"))) == len(names)
    messages = [_parse(p) for p in _emls(tmp_path)]
    assert sorted(str(m["To"]) for m in messages) == ["all@example.com", "one@example.com"]
    assert len({m["Message-ID"] for m in messages}) == 2
    for message in messages:
        assert message.get_content_type() == "multipart/alternative"
        kinds = [p.get_content_type() for p in message.iter_parts()]
        assert kinds == ["text/plain", "text/html"]
        unsubscribe = str(message["List-Unsubscribe"])
        assert "<https://news.example.com/" in unsubscribe and "<mailto:unsub@" in unsubscribe
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Subject"] and message["Date"] and message["List-Id"]
    status = runner.invoke(cli, [*base, "status", "--json", "--now", "2026-11-21T07:01Z"])
    data = json.loads(status.output)
    assert {job: run["outcome"] for job, run in data["runs"].items()} == dict.fromkeys(
        ("build", "dispatch", "plan", "sync"), "ok"
    )
    assert data["queue"]["sent"] == 2 and data["queue"]["queued"] == 0
    assert data["next_due"][0]["at"] == "2026-11-22T07:00:00+00:00"
    table = runner.invoke(cli, [*base, "status", "--now", "2026-11-21T07:01Z"]).output
    assert "dispatch" in table and "sent 2" in table


def _parse(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_fixed_clock_is_used_for_records(sqlite_store: Store) -> None:
    store = sqlite_store
    jobs = FakeJobs()
    settings = FAST
    clock = FixedClock(datetime(2026, 5, 1, 6, 0, tzinfo=UTC))
    parts = WorkerParts(jobs, SoleLeader("t"), clock, settings, RunLog(store))
    Worker(parts).run_once()
    assert RunLog(store).last()["plan"].started_at == clock.now()
