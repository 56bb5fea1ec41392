"""SmtpTransport against real aiosmtpd servers: outcomes, nothing lost, reuse, recovery, TLS."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from feedpipe.emails.mime import personalize_template
from feedpipe.emails.render import EmailRenderer, RenderedEdition
from feedpipe.mail import (
    Delivery,
    Envelope,
    FileTransport,
    MemoryTransport,
    Outcome,
    SmtpTransport,
    open_transport,
)
from feedpipe.model import Recipient
from feedpipe.settings import Settings, settings_from_mapping
from tests.smtp_servers import (
    DropHandler,
    RecordingHandler,
    RejectHandler,
    SmtpServer,
    StallHandler,
    ThrottleHandler,
    password_authenticator,
    serve,
    tls_contexts,
)
from tests.test_email_support import edition, make_post

SENDER = "digest@blog.example.com"
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def make_settings(port: int, **smtp: Any) -> Settings:
    """Settings sending over SMTP to 127.0.0.1:`port` (small timeout for the stall test)."""
    data = {
        "site": {"title": "Blog 002", "url": "https://blog.example.com"},
        "email": {
            "transport": "smtp",
            "from_address": SENDER,
            "smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 2.0, **smtp},
        },
    }
    env = {"FEEDPIPE_SMTP_PASSWORD": "s3cret"} if smtp.get("username") else {}
    return settings_from_mapping(data, Path("/tmp"), "test", env)


@pytest.fixture(scope="module")
def rendered() -> RenderedEdition:
    posts = [make_post(n, f"Post {n}", ("Rust",)) for n in range(1, 6)]
    return EmailRenderer(make_settings(25)).render_edition(edition(posts))


def message_id(n: int) -> str:
    return f"<ob{n}.e1@blog.example.com>"


def envelopes(rendered: RenderedEdition, count: int, start: int = 1) -> list[Envelope]:
    """Real personalised digests for reader<n>@example.org."""
    out = []
    for n in range(start, start + count):
        rcpt = f"reader{n}@example.org"
        who = Recipient(
            n, rcpt, f"Reader {n}", f"https://n.example.com/u/{n}", "https://n.example.com/p"
        )
        data = personalize_template(rendered.template, who, message_id(n), NOW)
        out.append(Envelope(n, SENDER, rcpt, data))
    return out


def send(
    server: SmtpServer, batches: Sequence[Sequence[Envelope]], **smtp: Any
) -> tuple[list[list[Delivery]], SmtpTransport]:
    """Send each batch with one transport (closed at the end)."""

    async def run() -> tuple[list[list[Delivery]], SmtpTransport]:
        transport = SmtpTransport.from_settings(make_settings(server.port, **smtp))
        transport.local_hostname = "client.test"
        try:
            return [await transport.send_many(batch) for batch in batches], transport
        finally:
            await transport.aclose()

    return asyncio.run(run())


def outcomes(deliveries: list[Delivery]) -> list[Outcome]:
    return [d.outcome for d in deliveries]


def assert_nothing_lost(batch: Sequence[Envelope], deliveries: list[Delivery]) -> None:
    assert [d.outbox_id for d in deliveries] == [e.outbox_id for e in batch]


@pytest.mark.parametrize("pipelining", [True, False])
def test_accept_delivers_every_message_and_reuses_connections(
    rendered: RenderedEdition, pipelining: bool
) -> None:
    handler = RecordingHandler(pipelining=pipelining)
    first, second = envelopes(rendered, 12), envelopes(rendered, 8, start=13)
    with serve(handler) as server:
        (one, two), transport = send(server, [first, second], concurrency=3)
    assert outcomes(one + two) == [Outcome.SENT] * 20
    assert {d.code for d in one + two} == {250}
    assert_nothing_lost(first, one)
    assert handler.connections == 3 == transport.opened  # reused across both batches
    by_rcpt = {r.rcpt_tos: r for r in handler.received}
    for env in first + second:
        got = by_rcpt[(env.recipient,)]
        message = got.parse()
        assert got.mail_from == SENDER
        assert message["Message-ID"] == message_id(env.outbox_id)
        assert email.utils.parseaddr(str(message["To"]))[1] == env.recipient
        assert message.get_content_type() == "multipart/alternative"
        assert got.data == env.data  # byte for byte (dot-stuffing undone by the server)


def test_pipelining_is_used_when_offered(rendered: RenderedEdition) -> None:
    async def run(server: SmtpServer) -> bool:
        transport = SmtpTransport.from_settings(make_settings(server.port, concurrency=1))
        try:
            await transport.send_many(envelopes(rendered, 1))
            session = transport.sessions[0]
            assert session is not None
            return session.pipelining
        finally:
            await transport.aclose()

    for offered in (True, False):
        with serve(RecordingHandler(pipelining=offered)) as server:
            assert asyncio.run(run(server)) is offered


@pytest.mark.parametrize(
    ("code", "stage"), [(421, "rcpt"), (451, "rcpt"), (454, "rcpt"), (451, "data"), (421, "data")]
)
def test_throttling_replies_are_throttled_and_slow_down(
    rendered: RenderedEdition, code: int, stage: str
) -> None:
    handler = ThrottleHandler(code=code, stage=stage, times=2)
    batch = envelopes(rendered, 10)
    with serve(handler) as server:
        (deliveries,), transport = send(server, [batch], concurrency=2)
    assert_nothing_lost(batch, deliveries)
    assert outcomes(deliveries).count(Outcome.THROTTLED) == 2
    assert outcomes(deliveries).count(Outcome.SENT) == 8
    assert {d.code for d in deliveries if d.outcome is Outcome.THROTTLED} == {code}
    assert all(
        "slow down" in d.reply or "try again" in d.reply for d in deliveries if d.code == code
    )
    assert len(handler.received) == 8
    assert transport.limiter.factor < 1.0  # the rate was halved
    if code == 421:
        assert transport.opened > 2  # the server hung up; new connections took over


@pytest.mark.parametrize(
    ("where", "code", "outcome"),
    [("rcpt", 550, Outcome.FAILED), ("data", 552, Outcome.BLOCKED), ("data", 554, Outcome.BLOCKED)],
)
def test_permanent_rejections_touch_only_that_recipient(
    rendered: RenderedEdition, where: str, code: int, outcome: Outcome
) -> None:
    """550 5.1.1 at RCPT is a bad mailbox (FAILED); 5.7.1 spam after DATA is a policy reply
    about the message (BLOCKED: nobody is penalised)."""
    bad = {"reader2@example.org": code, "reader5@example.org": code}
    handler = RejectHandler(rcpt_codes=bad) if where == "rcpt" else RejectHandler(data_codes=bad)
    batch = envelopes(rendered, 6)
    with serve(handler) as server:
        (deliveries,), transport = send(server, [batch], concurrency=2)
    assert_nothing_lost(batch, deliveries)
    failed = {d.outbox_id: d for d in deliveries if d.outcome is outcome}
    assert set(failed) == {2, 5}
    assert {d.code for d in failed.values()} == {code}
    assert all(d.reply.startswith("5.") for d in failed.values())
    assert sorted(r.rcpt_tos[0] for r in handler.received) == sorted(
        e.recipient for e in batch if e.recipient not in bad
    )
    assert handler.connections == 2 == transport.opened  # a 5xx keeps the connection


def test_dropped_connection_is_retried_and_the_pool_recovers(rendered: RenderedEdition) -> None:
    handler = DropHandler(drop_at=frozenset({3}))
    first, second = envelopes(rendered, 8), envelopes(rendered, 4, start=9)
    with serve(handler) as server:
        (one, two), transport = send(server, [first, second], concurrency=2)
    assert_nothing_lost(first, one)
    retried = [d for d in one if d.outcome is Outcome.RETRY]
    assert len(retried) == 1 and "connection lost" in retried[0].reply
    assert retried[0].code is None
    assert outcomes(two) == [Outcome.SENT] * 4
    assert transport.opened == 3  # the broken one was replaced once
    assert len(handler.received) == 11


def test_stalled_server_times_out_as_retry(rendered: RenderedEdition) -> None:
    handler = StallHandler(seconds=5.0, stall_at=frozenset({2}))
    batch = envelopes(rendered, 6)
    started = time.monotonic()
    with serve(handler) as server:
        (deliveries,), _ = send(server, [batch], concurrency=2, timeout_seconds=0.3)
        elapsed = time.monotonic() - started
    assert_nothing_lost(batch, deliveries)
    assert outcomes(deliveries).count(Outcome.RETRY) == 1
    assert outcomes(deliveries).count(Outcome.SENT) == 5
    assert "no reply within 0.3 s" in next(d.reply for d in deliveries if d.code is None)
    assert elapsed < 3.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_server_down_every_envelope_retry_nothing_raised(rendered: RenderedEdition) -> None:
    batch = envelopes(rendered, 30)

    async def run() -> list[Delivery]:
        transport = SmtpTransport.from_settings(make_settings(free_port(), concurrency=4))
        try:
            return await transport.send_many(batch)
        finally:
            await transport.aclose()

    deliveries = asyncio.run(run())
    assert_nothing_lost(batch, deliveries)
    tried = [d for d in deliveries if d.outcome is Outcome.RETRY]
    assert len(tried) == 4  # one refused connection per pool slot; the rest was not attempted
    assert outcomes(deliveries).count(Outcome.UNSENT) == 26
    assert all("refused the connection (Connection refused" in d.reply for d in deliveries)


def test_rate_limit_is_respected(rendered: RenderedEdition) -> None:
    handler = RecordingHandler()
    batch = envelopes(rendered, 12)
    with serve(handler) as server:
        started = time.monotonic()
        (deliveries,), _ = send(server, [batch], concurrency=4, max_per_second=20)
        elapsed = time.monotonic() - started
    assert outcomes(deliveries) == [Outcome.SENT] * 12
    assert elapsed >= (12 - 2) / 20 * 0.9  # a burst of 2 (0.1 s), then 20/s


def test_aclose_closes_every_connection(rendered: RenderedEdition) -> None:
    with serve(RecordingHandler()) as server:

        async def run() -> list[bool]:
            transport = SmtpTransport.from_settings(make_settings(server.port, concurrency=3))
            await transport.send_many(envelopes(rendered, 6))
            sessions = [s for s in transport.sessions if s is not None]
            assert len(sessions) == 3
            await transport.aclose()
            return [s.reader.transport.is_closing() for s in sessions]

        assert asyncio.run(run()) == [True, True, True]


def test_cancelled_send_drops_its_connections(rendered: RenderedEdition) -> None:
    with serve(StallHandler(seconds=5.0, stall_at=frozenset({1, 2}))) as server:

        async def run() -> list[Any]:
            transport = SmtpTransport.from_settings(make_settings(server.port, concurrency=2))
            task = asyncio.create_task(transport.send_many(envelopes(rendered, 4)))
            await asyncio.sleep(0.3)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            left = list(transport.sessions)
            await transport.aclose()
            return left

        assert asyncio.run(run()) == [None, None]


def tls_send(
    server_ctx: Callable[[RecordingHandler], SmtpServer],
    client_ctx: ssl.SSLContext | None,
    rendered: RenderedEdition,
    **smtp: Any,
) -> list[Delivery]:
    handler = RecordingHandler()
    server = server_ctx(handler)
    try:

        async def run() -> list[Delivery]:
            settings = make_settings(server.port, concurrency=1, **smtp)
            transport = SmtpTransport.from_settings(settings, tls_context=client_ctx)
            try:
                return await transport.send_many(envelopes(rendered, 2))
            finally:
                await transport.aclose()

        return asyncio.run(run())
    finally:
        server.stop()


def starttls_server(server_ctx: ssl.SSLContext, **extra: Any) -> Callable[..., SmtpServer]:
    def start(handler: RecordingHandler) -> SmtpServer:
        server = SmtpServer(handler, tls_context=server_ctx, require_starttls=True, **extra)
        server.start()
        return server

    return start


def test_starttls_with_auth(rendered: RenderedEdition) -> None:
    server_ctx, client_ctx = tls_contexts()
    start = starttls_server(
        server_ctx, auth_required=True, authenticator=password_authenticator("mailer", "s3cret")
    )
    sent = tls_send(start, client_ctx, rendered, security="starttls", username="mailer")
    assert outcomes(sent) == [Outcome.SENT] * 2


def test_wrong_password_is_blocked_with_the_reply(rendered: RenderedEdition) -> None:
    server_ctx, client_ctx = tls_contexts()
    start = starttls_server(
        server_ctx, auth_required=True, authenticator=password_authenticator("mailer", "other")
    )
    sent = tls_send(start, client_ctx, rendered, security="starttls", username="mailer")
    assert outcomes(sent)[0] is Outcome.BLOCKED  # a setup problem: the breaker counts it
    assert outcomes(sent)[1:] == [Outcome.UNSENT]  # not attempted once no session opened
    assert sent[0].code == 535


def test_implicit_tls(rendered: RenderedEdition) -> None:
    server_ctx, client_ctx = tls_contexts()

    def start(handler: RecordingHandler) -> SmtpServer:
        server = SmtpServer(handler, ssl_context=server_ctx)
        server.start()
        return server

    assert outcomes(tls_send(start, client_ctx, rendered, security="tls")) == [Outcome.SENT] * 2


def test_untrusted_certificate_is_retry(rendered: RenderedEdition) -> None:
    server_ctx, _ = tls_contexts()
    sent = tls_send(starttls_server(server_ctx), None, rendered, security="starttls")
    assert outcomes(sent) == [Outcome.RETRY, Outcome.UNSENT]
    assert all("certificate" in d.reply.lower() or "ssl" in d.reply.lower() for d in sent)


def test_open_transport_dispatches_on_the_setting(tmp_path: Path) -> None:
    smtp = make_settings(2525)
    outbox = replace(smtp, **{"email": replace(smtp.email, **{"transport": "outbox"})})
    assert isinstance(open_transport(smtp), SmtpTransport)
    assert isinstance(open_transport(outbox), FileTransport)


def test_memory_transport_scripts_outcomes_per_recipient(rendered: RenderedEdition) -> None:
    batch = envelopes(rendered, 3)
    script = {"reader2@example.org": [Outcome.THROTTLED, Outcome.FAILED]}
    transport = MemoryTransport(script)

    async def run() -> list[list[Delivery]]:
        out = [await transport.send_many(batch) for _ in range(3)]
        transport.down = True
        out.append(await transport.send_many(batch))
        await transport.aclose()
        return out

    rounds = asyncio.run(run())
    assert [d.outcome for d in rounds[0]] == [Outcome.SENT, Outcome.THROTTLED, Outcome.SENT]
    assert rounds[1][1].outcome is Outcome.FAILED and rounds[1][1].code == 550
    assert rounds[2][1].outcome is Outcome.SENT
    assert outcomes(rounds[3]) == [Outcome.RETRY] * 3
    assert len(transport.attempts) == 12 and len(transport.sent) == 7 and transport.closed
