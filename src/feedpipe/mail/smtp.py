"""The SMTP transport: a pool of reused, pipelining connections behind a rate limiter."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from feedpipe.mail.keypool import KeyPool, Signatures
from feedpipe.mail.model import Delivery, Envelope, Halt, Ready, Take, retry, unsent
from feedpipe.mail.rate import RateLimiter
from feedpipe.mail.session import (
    Attempt,
    ConnectError,
    Gate,
    NotReady,
    Session,
    SessionConfig,
    SessionError,
)
from feedpipe.mail.signing import DkimSigner, Prepared, SigningError
from feedpipe.settings import Settings

LOG = logging.getLogger("feedpipe.mail")
MIN_AHEAD = 8  # messages signed ahead of the connections, at least (else two per connection)


Signing = tuple[Prepared, "asyncio.Future[Signatures]"] | SigningError


@dataclass(slots=True)
class Ahead:
    """DKIM signing ahead of the connections: the event loop canonicalises and hashes the next
    messages and the key processes sign them while the connections send, so that no
    connection waits for a signature."""

    signer: DkimSigner
    pool: KeyPool | None  # None: the key step too in the event loop (no process would start)
    envelopes: Sequence[Envelope]
    depth: int
    signing: dict[int, Signing] = field(default_factory=dict)
    next: int = 0  # the first envelope not prepared yet

    def keep_up(self, index: int) -> None:
        """Once fewer than half of `depth` envelopes past `index` (the one a connection has
        just taken) are prepared, prepare and hand to the key processes those up to `depth`
        past it: a key process wakes once for many messages."""
        if self.pool is None or self.next - index > self.depth // 2:
            return
        stop = min(len(self.envelopes), index + self.depth)
        while self.next < stop:
            try:
                prepared = self.signer.prepare(self.envelopes[self.next].data)
                self.signing[self.next] = (prepared, self.pool.sign(prepared.digests))
            except SigningError as exc:
                self.signing[self.next] = exc
            self.next += 1

    async def data(self, index: int) -> bytes | SigningError:
        """The envelope's bytes with its DKIM-Signature fields in front."""
        data = self.envelopes[index].data
        try:
            if self.pool is None:
                return self.signer.sign(data)
            self.keep_up(index)
            entry = self.signing.pop(index)
            if isinstance(entry, SigningError):
                return entry
            prepared, future = entry
            return prepared.fields(await future) + data
        except SigningError as exc:
            return exc

    def close(self) -> None:
        """Drop what was signed ahead for nothing (the batch stopped, or a take said no)."""
        for entry in self.signing.values():
            if not isinstance(entry, SigningError):
                entry[1].cancel()
        self.signing.clear()


@dataclass(slots=True)
class Batch:
    """One send_many call: the envelopes, what is left to take, the results so far, and
    whether `halt` has stopped it."""

    envelopes: Sequence[Envelope]
    todo: deque[int]
    results: list[Delivery | None]
    halt: Halt | None = None
    take: Take | None = None
    ahead: Ahead | None = None
    ready: Ready | None = None
    halted: bool = False

    def gate(self, index: int | None) -> Gate | None:
        """What the connection awaits before the held envelope `index` may be accepted."""
        if self.ready is None or index is None:
            return None
        return functools.partial(self.ready, self.envelopes[index])

    def done(self, index: int, delivery: Delivery) -> None:
        self.results[index] = delivery
        if self.halt is not None and not self.halted and self.halt(delivery):
            self.halted = True
            self.todo.clear()


def delivery(envelope: Envelope, attempt: Attempt) -> Delivery:
    return Delivery(envelope.outbox_id, attempt.outcome, attempt.code, attempt.text)


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
        self.signing: KeyPool | None = None  # started by the first signed batch
        self.inline = False  # no key process could be started: sign in the event loop
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
        self,
        envelopes: Sequence[Envelope],
        halt: Halt | None = None,
        *,
        take: Take | None = None,
        ready: Ready | None = None,
    ) -> list[Delivery]:
        todo = deque(range(len(envelopes)))
        ahead = await self._ahead(envelopes)
        batch = Batch(envelopes, todo, [None] * len(envelopes), halt, take, ahead, ready)
        workers = min(len(self.sessions), len(envelopes))
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._work(slot, batch)) for slot in range(workers)]
        finally:
            if ahead is not None:
                ahead.close()
        reasons = [task.result() for task in tasks]
        reason = "sending paused" if batch.halted else next((r for r in reasons if r), "")
        reason = reason or ("not taken" if take is not None else "")
        return [
            delivery or unsent(envelopes[index], reason or "not attempted")
            for index, delivery in enumerate(batch.results)
        ]

    async def _work(self, slot: int, batch: Batch) -> str | None:
        """Send from the shared queue until it is empty; the reason if the server is unreachable.

        Each message is held before its final `.` until the next one begins (the `.` and the
        next envelope share a write) or the queue is empty; not while sending is paced (a
        `max_per_second`, or slowed down by throttling): a held message's DATA must not wait
        for a send slot, which may take longer than the server's timeout."""
        held: int | None = None
        try:
            while batch.todo:
                index = batch.todo.popleft()
                envelope = batch.envelopes[index]
                if held is not None and not self.limiter.idle:
                    await self._end(slot, batch, held)  # paced: no "." waits for a slot
                    held = None
                if batch.ahead is not None:
                    batch.ahead.keep_up(index)
                await self.limiter.acquire()
                if batch.take is not None and not await batch.take(envelope):
                    continue  # left UNSENT
                try:
                    data = envelope.data if batch.ahead is None else await batch.ahead.data(index)
                    held = await self._begin(slot, batch, index, data, held)
                except ConnectError as exc:
                    code, reply = (
                        (exc.code, exc.reply) if exc.code is not None else (None, str(exc))
                    )
                    batch.done(index, Delivery(envelope.outbox_id, exc.outcome, code, reply))
                    return str(exc)
        except BaseException:
            if held is not None:  # cancelled, or a take failed: the held "." is never sent
                self._drop(slot)
            raise
        if held is not None:
            await self._end(slot, batch, held)
        return None

    async def _ahead(self, envelopes: Sequence[Envelope]) -> Ahead | None:
        """Signing ahead for this batch when DKIM is on (the key processes started by the first
        signed batch, and again when one has stopped; if none will start, the event loop signs
        alone, slower)."""
        if self.signer is None:
            return None
        if self.signing is None and not self.inline:
            self.signing = KeyPool(self.signer.keys)
        if self.signing is not None:
            try:
                await self.signing.start()
            except (OSError, SigningError, TimeoutError) as exc:
                LOG.warning("DKIM: no key process (%s); signing in the event loop", exc)
                self.signing.close()
                self.signing, self.inline = None, True
        depth = max(MIN_AHEAD, 2 * len(self.sessions))
        return Ahead(self.signer, self.signing, envelopes, depth)

    async def _begin(
        self, slot: int, batch: Batch, index: int, data: bytes | SigningError, held: int | None
    ) -> int | None:
        """Start `index` on the slot's connection, ending the held message; the index now held.
        A connection found dead before this message started is reopened once for it."""
        envelope = batch.envelopes[index]
        if isinstance(data, SigningError):
            self._done(batch, index, retry(envelope, str(data)))
            return held
        while True:
            session, fresh = await self._session(slot, envelope.sender, held is not None)
            try:
                gate = batch.gate(held)
                begun = await session.begin(
                    envelope.sender, envelope.recipient, data, gate, envelope.crlf
                )
            except NotReady:
                self._drop(slot)  # in the middle of DATA: nothing may reach the server
                for stopped in (i for i in (held, index) if i is not None):
                    self._done(batch, stopped, unsent(batch.envelopes[stopped], "not ready"))
                return None
            except SessionError as exc:
                self._drop(slot)
                if held is None and fresh:
                    self._done(batch, index, retry(envelope, str(exc)))
                    return None
                if held is not None:  # this one had not started: on a new connection
                    lost = retry(batch.envelopes[held], str(exc), exc.content_sent)
                    self._done(batch, held, lost)
                held = None
                continue
            except BaseException:
                self._drop(slot)  # cancelled or a bug: the connection is in an unknown state
                raise
            if held is not None and begun.ended is not None:
                self._done(batch, held, delivery(batch.envelopes[held], begun.ended))
                held = None
                if not begun.ended.reusable:
                    self._drop(slot)
            if begun.again:
                continue
            if begun.attempt is None and batch.halted:  # by the reply to the one just ended
                self._drop(slot)  # in the middle of DATA: the server never gets this one's "."
                self._done(batch, index, unsent(envelope, "sending paused"))
                return None
            if begun.attempt is None:
                return index
            if not begun.attempt.reusable:
                self._drop(slot)
            self._done(batch, index, delivery(envelope, begun.attempt))
            return held

    async def _end(self, slot: int, batch: Batch, held: int) -> None:
        """The held message's final `.` and its reply (the queue is empty)."""
        envelope, session = batch.envelopes[held], self.sessions[slot]
        assert session is not None and session.held
        try:
            attempt = await session.end(batch.gate(held))
        except NotReady:
            self._drop(slot)
            self._done(batch, held, unsent(envelope, "not ready"))
            return
        except SessionError as exc:
            self._drop(slot)
            self._done(batch, held, retry(envelope, str(exc), exc.content_sent))
            return
        except BaseException:
            self._drop(slot)
            raise
        if not attempt.reusable:
            self._drop(slot)
        self._done(batch, held, delivery(envelope, attempt))

    def _done(self, batch: Batch, index: int, result: Delivery) -> None:
        batch.done(index, result)
        self.limiter.observe(result)

    async def _session(self, slot: int, sender: str, holding: bool) -> tuple[Session, bool]:
        """The slot's connection (the one `holding` a message), opened if needed; True when
        it is new."""
        session = self.sessions[slot]
        if session is not None and (holding or session.usable):
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
        key processes."""
        if self.signing is not None:
            await self.signing.aclose()
            self.signing = None
        sessions = [s for s in self.sessions if s is not None]
        self.sessions = [None] * len(self.sessions)
        try:
            await asyncio.gather(*(s.quit() for s in sessions), return_exceptions=True)
        finally:
            for session in sessions:
                session.close()
