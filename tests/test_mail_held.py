"""A message held before its final dot (until the next begins): the edge cases around it, over
a real aiosmtpd server. Each failed before the fixes of a review (session 11)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import pytest

from feedpipe.emails.render import EmailRenderer, RenderedEdition
from feedpipe.mail import Delivery, Envelope, Outcome, SmtpTransport
from feedpipe.outbox.dispatch import recorded_at_once
from feedpipe.outbox.policy import is_outage
from tests.smtp_servers import DropHandler, RecordingHandler, RejectHandler, serve
from tests.test_email_support import edition, make_post
from tests.test_mail_smtp import envelopes, make_settings


@pytest.fixture(scope="module")
def rendered() -> RenderedEdition:
    posts = [make_post(n, f"Post {n}", ("Rust",)) for n in range(1, 3)]
    return EmailRenderer(make_settings(25)).render_edition(edition(posts))


def transport(port: int, **smtp: Any) -> SmtpTransport:
    built = SmtpTransport.from_settings(make_settings(port, **smtp))
    built.local_hostname = "client.test"
    return built


def received(handler: RecordingHandler) -> list[str]:
    return [r.rcpt_tos[0] for r in handler.received]


def send_batch(
    handler: RecordingHandler,
    batch: list[Envelope],
    halt: Callable[[Delivery], bool] | None = None,
    serving: dict[str, Any] | None = None,
    **smtp: Any,
) -> list[Delivery]:
    """One batch over one connection to a server with `handler` (and `serving` options)."""

    async def run(port: int) -> list[Delivery]:
        sender = transport(port, concurrency=1, **smtp)
        try:
            return await sender.send_many(batch, halt)
        finally:
            await sender.aclose()

    with serve(handler, **(serving or {})) as server:
        return asyncio.run(run(server.port))


@dataclass
class DropAtSecondMail(RecordingHandler):
    """Accepts the first message, then drops the connection at the next MAIL."""

    mails: int = 0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, *args: Any) -> str:
        self.mails += 1
        if self.mails == 2:
            cast(asyncio.Transport, server.transport).abort()
            await asyncio.sleep(3600)
        return await super().handle_MAIL(server, session, envelope, *args)


@pytest.mark.parametrize("pipelining", [True, False])
def test_an_accepted_message_stays_sent_when_the_next_envelope_loses_the_connection(
    rendered: RenderedEdition, pipelining: bool
) -> None:
    handler = DropAtSecondMail(pipelining=pipelining)
    batch = envelopes(rendered, 2)

    deliveries = send_batch(handler, batch)
    assert received(handler) == ["reader1@example.org", "reader2@example.org"]
    assert [d.outcome for d in deliveries] == [Outcome.SENT, Outcome.SENT]  # 2: new connection


def test_a_cancelled_batch_never_ends_its_held_message_later(rendered: RenderedEdition) -> None:
    """Cancelled while message 1 is held (its next take still waiting): the connection goes, so
    the next batch neither sends message 1's dot nor skips `ready` for it."""
    handler = RecordingHandler()
    batch = envelopes(rendered, 3)
    asked: list[int] = []

    async def ready(envelope: Envelope) -> bool:
        asked.append(envelope.outbox_id)
        return True

    async def take(envelope: Envelope) -> bool:
        if envelope.outbox_id == 2:
            await asyncio.Event().wait()  # e.g. waiting for room in the recording group
        return True

    async def run(port: int) -> list[Delivery]:
        sender = transport(port, concurrency=1)
        try:
            first = asyncio.create_task(sender.send_many(batch[:2], take=take, ready=ready))
            await asyncio.sleep(0.5)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            return await sender.send_many(batch[2:], ready=ready)
        finally:
            await sender.aclose()

    with serve(handler) as server:
        later = asyncio.run(run(server.port))
    assert [d.outcome for d in later] == [Outcome.SENT]
    assert received(handler) == ["reader3@example.org"]
    assert asked == [3]


def test_a_halt_on_the_held_message_s_reply_sends_nothing_more(
    rendered: RenderedEdition,
) -> None:
    """The next envelope already went out with the held message's dot; when that reply opens
    the breaker, the next message's dot is never sent."""
    handler = RejectHandler(data_codes={"reader1@example.org": 554})
    batch = envelopes(rendered, 4)

    deliveries = send_batch(handler, batch, lambda d: d.outcome is Outcome.BLOCKED)
    assert received(handler) == []
    assert [d.outcome for d in deliveries] == [Outcome.BLOCKED] + [Outcome.UNSENT] * 3


def test_paced_sending_holds_no_message_across_a_slot(rendered: RenderedEdition) -> None:
    """With max_per_second, a message is ended before the wait for the next slot: a server
    whose DATA timeout is shorter than the slot still gets every message."""
    handler = RecordingHandler()
    batch = envelopes(rendered, 3)

    deliveries = send_batch(handler, batch, serving={"timeout": 0.6}, max_per_second=1.0)
    assert [d.outcome for d in deliveries] == [Outcome.SENT] * 3
    assert received(handler) == [f"reader{n}@example.org" for n in (1, 2, 3)]


def test_a_message_lost_after_its_end_is_marked_as_maybe_delivered(
    rendered: RenderedEdition,
) -> None:
    """The connection drops after message 2's content and dot arrived: its RETRY says the
    server may have it, so the dispatcher records it at once (it counts against the resend
    bound like an answer) and a batch of only such deliveries is no outage."""
    handler = DropHandler(drop_at=frozenset({2}))
    batch = envelopes(rendered, 3)

    deliveries = send_batch(handler, batch)
    assert [d.outcome for d in deliveries] == [Outcome.SENT, Outcome.RETRY, Outcome.SENT]
    assert [d.content_sent for d in deliveries] == [False, True, False]
    assert recorded_at_once(deliveries[1])
    assert not is_outage([deliveries[1]])
    unreached = Delivery(9, Outcome.RETRY, None, "connection refused")
    assert not recorded_at_once(unreached) and is_outage([unreached])
