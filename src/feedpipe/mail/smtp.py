"""The SMTP transport: a pool of reused, pipelining connections behind a rate limiter."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from feedpipe.mail.model import Delivery, Envelope, Halt, Take, retry, unsent
from feedpipe.mail.rate import RateLimiter
from feedpipe.mail.session import ConnectError, Session, SessionConfig, SessionError
from feedpipe.mail.signing import DkimSigner, SigningError
from feedpipe.settings import Settings


@dataclass(slots=True)
class Batch:
    """One send_many call: the envelopes, what is left to take, the results so far, and
    whether `halt` has stopped it."""

    envelopes: Sequence[Envelope]
    todo: deque[int]
    results: list[Delivery | None]
    halt: Halt | None = None
    take: Take | None = None
    halted: bool = False

    def done(self, index: int, delivery: Delivery) -> None:
        self.results[index] = delivery
        if self.halt is not None and not self.halted and self.halt(delivery):
            self.halted = True
            self.todo.clear()


def helo_default(sender: str) -> str:
    """The HELO name when none is configured: the envelope sender's domain."""
    return sender.rpartition("@")[2]


class SmtpTransport:
    """`concurrency` connections, each sending one message at a time; kept between batches.

    A broken connection is dropped and reopened for the next message. A connection that
    cannot be opened takes its worker out of the batch; when no worker is left, the rest
    of the batch is RETRY with the reason. Throttling replies slow the limiter down.
    """

    def __init__(
        self,
        config: SessionConfig,
        concurrency: int = 8,
        limiter: RateLimiter | None = None,
        signer: DkimSigner | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter()
        self.signer = signer
        self.signing: ThreadPoolExecutor | None = None  # opened by the first signed batch
        self.local_hostname = local_hostname
        self.sessions: list[Session | None] = [None] * concurrency
        self.opened = 0  # connections opened so far

    @classmethod
    def from_settings(
        cls, settings: Settings, tls_context: ssl.SSLContext | None = None
    ) -> SmtpTransport:
        smtp = settings.email.smtp
        return cls(
            SessionConfig.from_settings(smtp, tls_context),
            smtp.concurrency,
            # The hour budget is the dispatcher's, kept in the store for every process; this
            # limiter paces the connections and slows down on throttling replies.
            RateLimiter(smtp.max_per_second),
            DkimSigner.from_settings(settings.email),
            settings.email.helo_name,
        )

    async def send_many(
        self, envelopes: Sequence[Envelope], halt: Halt | None = None, *, take: Take | None = None
    ) -> list[Delivery]:
        todo = deque(range(len(envelopes)))
        batch = Batch(envelopes, todo, [None] * len(envelopes), halt, take)
        workers = min(len(self.sessions), len(envelopes))
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._work(slot, batch)) for slot in range(workers)]
        reasons = [task.result() for task in tasks]
        reason = "sending paused" if batch.halted else next((r for r in reasons if r), "")
        reason = reason or ("not taken" if take is not None else "")
        return [
            delivery or unsent(envelopes[index], reason or "not attempted")
            for index, delivery in enumerate(batch.results)
        ]

    async def _work(self, slot: int, batch: Batch) -> str | None:
        """Send from the shared queue until it is empty; the reason if the server is unreachable."""
        while batch.todo:
            index = batch.todo.popleft()
            envelope = batch.envelopes[index]
            await self.limiter.acquire()
            if batch.take is not None and not await batch.take(envelope):
                continue  # left UNSENT
            try:
                data = await self._signed(envelope)
                delivery = await self._deliver(slot, envelope, data)
            except ConnectError as exc:
                code, reply = (exc.code, exc.reply) if exc.code is not None else (None, str(exc))
                batch.done(index, Delivery(envelope.outbox_id, exc.outcome, code, reply))
                return str(exc)
            batch.done(index, delivery)
            self.limiter.observe(delivery)
        return None

    async def _signed(self, envelope: Envelope) -> bytes | SigningError:
        """The envelope's bytes as they go out (DKIM-signed when configured; the RSA step in
        threads, one per core, opened by the first signed message)."""
        if self.signer is None:
            return envelope.data
        if self.signing is None:
            self.signing = ThreadPoolExecutor(os.cpu_count() or 2, "dkim")
        try:
            return await self.signer.sign_async(envelope.data, self.signing)
        except SigningError as exc:
            return exc

    async def _deliver(self, slot: int, envelope: Envelope, data: bytes | SigningError) -> Delivery:
        """One transaction; a reused connection found dead before DATA is reopened once."""
        if isinstance(data, SigningError):
            return retry(envelope, str(data))
        while True:
            session, fresh = await self._session(slot, envelope.sender)
            try:
                attempt = await session.transact(envelope.sender, envelope.recipient, data)
            except SessionError as exc:
                self._drop(slot)
                if fresh or exc.content_sent:
                    return retry(envelope, str(exc))
                continue
            except BaseException:
                self._drop(slot)  # cancelled or a bug: the connection is in an unknown state
                raise
            if not attempt.reusable:
                self._drop(slot)
            return Delivery(envelope.outbox_id, attempt.outcome, attempt.code, attempt.text)

    async def _session(self, slot: int, sender: str) -> tuple[Session, bool]:
        """The slot's connection, opened if needed; True when it is new."""
        session = self.sessions[slot]
        if session is not None and session.usable:
            return session, False
        self._drop(slot)
        helo = self.local_hostname or helo_default(sender)
        session = await Session.open(self.config, helo)
        self.sessions[slot] = session
        self.opened += 1
        return session, True

    def _drop(self, slot: int) -> None:
        session, self.sessions[slot] = self.sessions[slot], None
        if session is not None:
            session.close()

    async def aclose(self) -> None:
        """QUIT every connection (concurrently), closing each even if QUIT fails; stop the
        signing threads."""
        if self.signing is not None:
            self.signing.shutdown(wait=False, cancel_futures=True)
            self.signing = None
        sessions = [s for s in self.sessions if s is not None]
        self.sessions = [None] * len(self.sessions)
        try:
            await asyncio.gather(*(s.quit() for s in sessions), return_exceptions=True)
        finally:
            for session in sessions:
                session.close()
