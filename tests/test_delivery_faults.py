"""The SMTP fault matrix: real aiosmtpd servers, the real dispatcher and store; for each reply
the state, attempts, bounce count and breaker it leaves. A sender refused run after run never
bounces anyone; once fixed, everything queued goes out exactly once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from click.testing import CliRunner

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.mail import SmtpTransport
from feedpipe.model import DispatchReport, OutboxState, SubscriberStatus
from feedpipe.outbox.breaker import Breaker, BreakerLimits, meta_key
from feedpipe.outbox.dispatch import Dispatcher, DispatchOptions
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.store import Store
from feedpipe.worker.metrics import WorkerMetrics
from feedpipe.worker.status import sending
from tests.helpers import write_post
from tests.outbox_helpers import SENDER, T0, add_subscribers, edition, queue
from tests.outbox_helpers import settings as make_settings
from tests.smtp_servers import (
    DropHandler,
    RecordingHandler,
    ScriptedHandler,
    SmtpServer,
    StallHandler,
    serve,
)

SENDER_REFUSED = "550 5.7.1 <digest@blog.example.com>: Sender address rejected: Access denied"
T_ADD = "2026-03-01T00:00:00Z"
R, S, F = OutboxState.RETRY, OutboxState.SENT, OutboxState.FAILED
KEPT = {(R, 0), (OutboxState.QUEUED, 0)}  # refused (retry) or never attempted (still queued)


@dataclass(frozen=True)
class Fault:
    """One row of the matrix: every message gets `reply` at `stage`; what each row must show."""

    stage: str
    reply: str
    state: OutboxState
    attempts: int  # recorded on the row after one try (uncounted: 0; throttling counts)
    bounces: int  # the subscriber's bounce count
    breaker: int  # the breaker's streak (three messages refused that way: 3)


MATRIX = {
    "421 closing": Fault("rcpt", "421 4.7.0 Try again later, closing connection", R, 1, 0, 0),
    "450 busy": Fault("rcpt", "450 4.2.1 Mailbox busy, try again later", R, 1, 0, 0),
    "451 4.7.1 greylisted": Fault("rcpt", "451 4.7.1 Greylisted, please try again", R, 1, 0, 0),
    "452 storage": Fault("rcpt", "452 4.3.1 Insufficient system storage", R, 1, 0, 0),
    "454 tls": Fault("mail", "454 4.7.0 TLS not available due to local problem", R, 1, 0, 0),
    "454 relay": Fault("rcpt", "454 4.7.1 <x>: Relay access denied", R, 0, 0, 3),
    "550 5.1.1": Fault("rcpt", "550 5.1.1 <x>: Recipient address rejected: No such user",
                       F, 1, 1, 0),
    "550 5.7.1 sender": Fault("rcpt", SENDER_REFUSED, R, 0, 0, 3),
    "550 5.7.1 at MAIL": Fault("mail", SENDER_REFUSED, R, 0, 0, 3),
    "504 5.5.2 HELO at RCPT": Fault(
        "rcpt", "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
        R, 0, 0, 3,
    ),
    "530 5.7.0": Fault("mail", "530 5.7.0 Must issue a STARTTLS command first", R, 0, 0, 3),
    "552 5.3.4": Fault("data", "552 5.3.4 Message size exceeds fixed limit", R, 0, 0, 3),
    "554 5.7.1": Fault(
        "data", "554 5.7.1 Service unavailable; Client host blocked using zen.spamhaus.org",
        R, 0, 0, 3,
    ),
}  # fmt: skip


def dispatcher(
    store: Store, port: int, clock: FixedClock, limits: BreakerLimits | None = None
) -> Dispatcher:
    settings = make_settings(
        Path("/tmp"), "sqlite://", transport="smtp",
        smtp={"host": "127.0.0.1", "port": port, "timeout_seconds": 0.5, "concurrency": 1},
    )  # fmt: skip
    options = DispatchOptions(
        sender=SENDER,
        concurrency=1,
        transport_name=f"smtp:127.0.0.1:{port}",
        limits=limits or BreakerLimits(),
    )
    transport = SmtpTransport.from_settings(settings)
    return Dispatcher(store, transport, clock, options, random.Random(3), owner="faults")


def dispatch(
    store: Store, server: SmtpServer, now: datetime, streak: int = 5, recipients: int = 20
) -> DispatchReport:
    d = dispatcher(store, server.port, FixedClock(now), BreakerLimits(streak, recipients))

    async def run() -> DispatchReport:
        try:
            return await d.run()
        finally:
            await d.transport.aclose()

    return asyncio.run(run())


def breaker_of(store: Store, server: SmtpServer) -> Breaker:
    return Breaker.from_json(store.get_meta(meta_key(f"smtp:127.0.0.1:{server.port}")))


def rows(store: Store, subs: list[int]) -> list[tuple[OutboxState, int]]:
    return [
        (state, attempts) for sub in subs for _, state, attempts, _ in store.outbox_messages(sub)
    ]


@pytest.mark.parametrize("fault", MATRIX.values(), ids=MATRIX.keys())
def test_fault_matrix(sqlite_store: Store, tmp_path: Path, fault: Fault) -> None:
    subs = add_subscribers(sqlite_store, 3)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)
    with serve(ScriptedHandler(stage=fault.stage, reply=fault.reply)) as server:
        report = dispatch(sqlite_store, server, T0)
        breaker = breaker_of(sqlite_store, server)
    assert rows(sqlite_store, subs) == [(fault.state, fault.attempts)] * 3
    assert [sqlite_store.subscriber_failures(s) for s in subs] == [fault.bounces] * 3
    assert (breaker.streak, breaker.is_open) == (fault.breaker, False)
    assert report.attempted == 3 and report.paused is None


def test_ehlo_refused_is_a_sender_problem(sqlite_store: Store, tmp_path: Path) -> None:
    """Each session refused at EHLO is one sender/policy reply: five open the breaker."""
    subs = add_subscribers(sqlite_store, 8)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)
    refusal = "504 5.5.2 <blog.example.com>: Helo command rejected: Host not found"
    handler = ScriptedHandler(stage="ehlo", reply=refusal)
    with serve(handler) as server:
        report = dispatch(sqlite_store, server, T0)
        breaker = breaker_of(sqlite_store, server)
    assert set(rows(sqlite_store, subs)) <= KEPT  # refused or not attempted: all kept
    assert [sqlite_store.subscriber_failures(s) for s in subs] == [0] * 8
    assert breaker.is_open and report.paused == refusal and report.blocked == 5
    assert "helo_name" in breaker.fix


@pytest.mark.parametrize(
    "handler",
    [DropHandler(drop_at=frozenset({2})), StallHandler(seconds=3.0, stall_at=frozenset({2}))],
    ids=["drop mid-DATA", "stall past the timeout"],
)
def test_no_final_reply_is_a_counted_retry(
    sqlite_store: Store, tmp_path: Path, handler: RecordingHandler
) -> None:
    subs = add_subscribers(sqlite_store, 3)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)
    with serve(handler) as server:
        report = dispatch(sqlite_store, server, T0)
        breaker = breaker_of(sqlite_store, server)
    assert sorted(rows(sqlite_store, subs)) == [(R, 1), (S, 1), (S, 1)]
    assert [sqlite_store.subscriber_failures(s) for s in subs] == [0] * 3
    assert breaker == Breaker() and (report.sent, report.retry) == (2, 1)


def test_a_sender_refused_for_five_runs_bounces_nobody_then_all_go_out_once(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 12)
    queue(store, edition(make_settings(tmp_path, "sqlite://")), subs)
    handler = ScriptedHandler(stage="rcpt", reply=SENDER_REFUSED)
    with serve(handler) as server:
        now = T0
        reports = []
        for _ in range(5):
            reports.append(dispatch(store, server, now, streak=5))
            now += timedelta(hours=1)
        breaker = breaker_of(store, server)
        assert handler.refused == 5 + 4  # five to open it, then one probe per run
        assert all(r.paused == SENDER_REFUSED for r in reports)
        assert breaker.is_open and breaker.paused == SENDER_REFUSED and breaker.probes == 4
        assert [store.subscriber_failures(s) for s in subs] == [0] * 12
        assert {s.status for s in store.subscribers()} == {SubscriberStatus.ACTIVE}
        assert set(rows(store, subs)) <= KEPT  # kept, and no attempt counted
        assert not handler.received

        handler.fixed = True
        assert breaker.probe_at is not None
        fixed = dispatch(store, server, breaker.probe_at)
        again = dispatch(store, server, breaker.probe_at + timedelta(hours=1))
    assert fixed.sent == 12 and fixed.paused is None and again.attempted == 0
    assert breaker_of(store, server) == Breaker()
    assert rows(store, subs) == [(S, 1)] * 12
    ids = Counter(r.message_id for r in handler.received)
    assert len(ids) == 12 and set(ids.values()) == {1}


def test_distinct_recipients_open_the_breaker_between_successes(
    sqlite_store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(sqlite_store, 10)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)

    @dataclass
    class EveryOther(ScriptedHandler):
        async def on_rcpt(self, server: SMTP, address: str, count: int) -> str | None:
            return self.reply if count % 2 else None

    with serve(EveryOther(reply=SENDER_REFUSED)) as server:
        report = dispatch(sqlite_store, server, T0, streak=5, recipients=3)
        breaker = breaker_of(sqlite_store, server)
    assert breaker.is_open and report.paused == SENDER_REFUSED
    assert (report.sent, report.blocked) == (2, 3)  # nothing after the third refusal
    assert sum(state in (R, OutboxState.QUEUED) for state, _ in rows(sqlite_store, subs)) == 8


def test_cli_status_metrics_and_resume(tmp_path: Path, sqlite_url: str) -> None:
    handler = ScriptedHandler(stage="mail", reply="530 5.7.0 Authentication required")
    with serve(handler) as server:
        posts = tmp_path / "posts"
        posts.mkdir()
        write_post(posts, "alpha", "2026-02-01T09:00:00Z", '["Rust"]')
        config = tmp_path / "config.toml"
        config.write_text(
            '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
            f'[source]\npath = "{posts}"\n[store]\nurl = "{sqlite_url}"\n'
            '[email]\ntransport = "smtp"\nfrom_address = "digest@blog.example.com"\n'
            f'[email.smtp]\nhost = "127.0.0.1"\nport = {server.port}\n'
            'helo_name = "mail.blog.example.com"\nconcurrency = 1\n',
            encoding="utf-8",
        )

        def run(*args: str, code: int = 0) -> str:
            result = CliRunner().invoke(cli, ["--config", str(config), *args])
            assert result.exit_code == code, result.output
            return result.output

        run("sync", "--now", "2026-03-01T00:00:00Z")
        for n in range(8):
            run(
                "subscribers",
                "add",
                f"r{n}@example.com",
                "--confirmed",
                "--now",
                "2026-03-01T00:00:00Z",
            )
        write_post(posts, "beta", "2026-03-01T10:00:00Z", '["Rust"]')
        run("sync", "--now", "2026-03-01T10:00:00Z")
        sent = run("send", "--now", "2026-03-02T08:00:00Z", code=1)  # paused: not its job done
        assert "sending paused: 530 5.7.0 Authentication required" in sent
        assert handler.refused == 5 and "0 failed" in sent

        status = run("status", "--now", "2026-03-02T08:00:10Z")
        assert "sending paused: 530 5.7.0 Authentication required" in status
        assert "FEEDPIPE_SMTP_PASSWORD" in status and "feedpipe outbox resume" in status
        with Feedpipe.from_settings(load_settings(config, env={})) as service:
            metrics = WorkerMetrics(sending=lambda: sending(service))
            paused = metrics.registry.get_sample_value(
                "feedpipe_sending_paused",
                {
                    "transport": f"smtp:127.0.0.1:{server.port}",
                    "reply": "530 5.7.0 Authentication required",
                    "fix": sending(service)["fix"],
                },
            )
        assert paused == 1.0

        assert "paused" in run("send", "--now", "2026-03-02T08:00:20Z", code=1)  # no probe yet
        assert handler.refused == 5
        handler.fixed = True
        assert "sending resumed" in run("outbox", "resume")
        assert "8 sent" in run("send", "--now", "2026-03-02T08:00:30Z")
        assert "sending ok" in run("status", "--now", "2026-03-02T08:00:40Z")
    assert len({r.message_id for r in handler.received}) == len(handler.received) == 8
    assert {r.parse()["To"] for r in handler.received} == {f"r{n}@example.com" for n in range(8)}


@dataclass
class HeloRecorder(RecordingHandler):
    """Records the name each EHLO gave."""

    names: list[str] = field(default_factory=list)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> list[str]:
        self.names.append(hostname)
        return await super().handle_EHLO(server, session, envelope, hostname, responses)


def test_helo_name_is_sent_and_validated(tmp_path: Path) -> None:
    handler = HeloRecorder()
    with serve(handler) as server:
        subs_store_url = f"sqlite:///{tmp_path / 'h.db'}"
        settings = make_settings(
            tmp_path, subs_store_url, transport="smtp", from_address="digest@blog.example.com",
            smtp={"host": "127.0.0.1", "port": server.port},
        )  # fmt: skip
        assert settings.email.helo_name == "blog.example.com"  # the default
        with Feedpipe.from_settings(settings, FixedClock(T0)) as service:
            subs = add_subscribers(service.store, 1)
            queue(service.store, edition(settings), subs)
            asyncio.run(service.outbox.dispatch())
    assert handler.names == ["blog.example.com"] and len(handler.received) == 1
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        '[email]\ntransport = "smtp"\n[email.smtp]\nhelo_name = "localhost"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "check-config"])
    assert result.exit_code == 2
    assert "helo_name" in result.output and "localhost" in result.output
