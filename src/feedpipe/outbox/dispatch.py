"""The one dispatch loop: claim a batch, build each message from its edition, send, record."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from feedpipe.clock import Clock
from feedpipe.emails.mime import MimeTemplate, personalize_template
from feedpipe.errors import FeedpipeError
from feedpipe.mail import Delivery, Envelope, Outcome, Transport
from feedpipe.mail.model import Halt, unsent
from feedpipe.mail.verp import Verp
from feedpipe.mail.wire import crlf_only
from feedpipe.model import (
    Claim,
    ClaimedMessage,
    Decision,
    DispatchReport,
    OutboxState,
    RecordReport,
)
from feedpipe.outbox.breaker import Breaker, BreakerLimits, Gate, meta_key
from feedpipe.outbox.budget import SharedBudget, budget_key
from feedpipe.outbox.inflight import RECORD_GROUP, InFlight
from feedpipe.outbox.policy import RetryPolicy, is_outage, unbuildable
from feedpipe.store import Store

TEMPLATE_CACHE = 32  # parsed edition templates kept (each about the size of one message)
Progress = Callable[[DispatchReport], None]
Stop = Callable[[], bool]  # checked before each batch: true ends the run early
Latency = Callable[[float, int], None]  # (seconds for one send_many, messages in it)
LOG = logging.getLogger("feedpipe.outbox")


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    """How a dispatcher works: batch size, batches claimed at once, lease, limits."""

    sender: str
    batch_size: int = 200
    concurrency: int = 2  # batches claimed at once (one sends while the other is claimed)
    lease: timedelta = timedelta(seconds=60)  # renewed while the dispatcher holds the rows
    max_attempts: int = 8
    bounce_limit: int = 3
    transport_name: str = "outbox"  # whose circuit breaker (and send budget) this is
    limits: BreakerLimits = field(default_factory=BreakerLimits)
    connections: int = 1  # the transport's connections: messages physically in flight
    record_group: int = RECORD_GROUP  # results recorded per transaction at most
    max_per_second: float | None = None  # the shared send budget (kept in the store)
    max_per_hour: int | None = None
    verp: Verp | None = None  # bounce addresses: the envelope sender names each message

    def envelope_sender(self, outbox_id: int) -> str:
        return self.sender if self.verp is None else self.verp.sender(outbox_id)

    @property
    def window(self) -> int:
        """How many messages may be resent after a crash: accepted by the server but not yet
        recorded, at most one per connection (a connection sends its next message only once
        its last answer is committed)."""
        return self.connections


def process_owner() -> str:
    """The prefix every lease owner of this process starts with."""
    return f"{os.uname().nodename[:30]}:{os.getpid()}:"


def worker_id() -> str:
    """A lease owner name unique to this process and run."""
    return process_owner() + uuid.uuid4().hex[:8]


class TemplateCache:
    """Parsed edition templates, least recently used dropped first (memory stays flat)."""

    def __init__(self, store: Store, size: int = TEMPLATE_CACHE) -> None:
        self.store = store
        self.size = size
        self.items: OrderedDict[str, MimeTemplate] = OrderedDict()
        self.crlf: dict[str, bool] = {}  # CRLF line ends only: so are its messages (mail.model)

    def get_many(self, keys: set[str]) -> dict[str, MimeTemplate]:
        missing = sorted(k for k in keys if k not in self.items)
        for key, blob in self.store.edition_templates(missing).items():
            self.items[key] = MimeTemplate.load(blob)
            self.crlf[key] = crlf_only(self.items[key].data)
        for key in keys & self.items.keys():
            self.items.move_to_end(key)
        found = {k: self.items[k] for k in keys if k in self.items}
        while len(self.items) > max(self.size, len(keys)):
            self.crlf.pop(self.items.popitem(last=False)[0], None)
        return found


@dataclass
class Dispatcher:
    """Sends what is due from the outbox through a transport until nothing is due (or `stop`).

    Each of `concurrency` workers loops: claim a batch (lease), build its messages, send them.
    A row becomes `sending` only when a connection takes it, and each result is recorded as
    the server answers, a small group per transaction (`InFlight`), which also renews the
    leases of what is still held. Database work runs in threads so that one worker's sending
    overlaps another's claiming; `send_many` calls take turns (the transport spreads each
    batch over its own connection pool). The configured rate limits are a budget in the store
    (`SharedBudget`), shared by every process. `on_latency` hears how long each `send_many`
    took.
    """

    store: Store
    transport: Transport
    clock: Clock
    options: DispatchOptions
    rng: random.Random = field(default_factory=random.Random)
    owner: str = field(default_factory=worker_id)
    monotonic: Callable[[], float] = time.monotonic
    on_latency: Latency | None = None
    report: DispatchReport = field(default_factory=DispatchReport)
    _stop: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.templates = TemplateCache(self.store)
        self.policy = RetryPolicy(self.options.max_attempts, self.rng)
        self._sending = asyncio.Lock()
        self.breaker = Breaker()  # read from the store (and changed) only under `_sending`
        self._stop_check: Stop | None = None

    async def run(
        self, progress: Progress | None = None, stop: Stop | None = None
    ) -> DispatchReport:
        """Dispatch until no message is due, the server is down, the hour budget is spent or
        `stop()` (checked before each message); returns the totals."""
        started = self.monotonic()
        opts = self.options
        self._stop, self._stop_check = False, stop
        self._sending = asyncio.Lock()
        self._loop_thread = threading.get_ident()
        self._loop = asyncio.get_running_loop()
        self.inflight = InFlight(
            self.store, self.owner, self.clock, opts.lease, opts.bounce_limit,
            opts.record_group, on_recorded=self._recorded,
        )  # fmt: skip
        self.budget = None
        if opts.max_per_second or opts.max_per_hour:
            key = budget_key(opts.transport_name)
            per = (opts.max_per_second, opts.max_per_hour)
            self.budget = SharedBudget(self.store, key, self.clock, *per)
        recorder = asyncio.create_task(self.inflight.run())
        try:
            await asyncio.gather(*(self._worker(progress, stop) for _ in range(opts.concurrency)))
        finally:
            self.inflight.close()
            await recorder
            if self.budget is not None:
                await asyncio.to_thread(self.budget.close)
        self.report = replace(self.report, seconds=self.monotonic() - started)
        return self.report

    async def _worker(self, progress: Progress | None, stop: Stop | None) -> None:
        while not self._stop and not (stop is not None and stop()):
            done = await self.step()
            if progress is not None:
                progress(self.report)
            if not done:
                return

    async def step(self) -> bool:
        """One batch: claim, send (results recorded as they come). False when nothing was due
        or sending is paused."""
        now = self.clock.now()
        opts = self.options
        stored = await asyncio.to_thread(self.load_breaker)  # another process may have changed it
        gate = stored.gate(now)
        if gate is Gate.PAUSED:
            return self._pause(stored)
        size = 1 if gate is Gate.PROBE else opts.batch_size
        claim = await asyncio.to_thread(self.store.claim_outbox, self.owner, now, opts.lease, size)
        self._count(cancelled=claim.cancelled, expired=claim.expired)
        if not claim.messages:
            return claim.cancelled + claim.expired > 0
        self.inflight.hold(m.outbox_id for m in claim.messages)
        heard: dict[int, Delivery] = {}
        deliveries = await self.send(claim, heard)
        late = [d for d in deliveries if d.outbox_id not in heard]
        self.inflight.answered(self.decide(claim.messages, late, is_outage(deliveries)))
        self._tally(deliveries)
        await self.inflight.settle()  # the batch is recorded before this worker claims again
        return not self._stop

    async def send(self, claim: Claim, heard: dict[int, Delivery] | None = None) -> list[Delivery]:
        """Build every message of the batch and hand to the transport what the breaker allows
        (all, one probe, or none); the rest is UNSENT. Each answer the transport reports as it
        comes is decided and queued for recording at once (and put in `heard`)."""
        envelopes, broken = self.envelopes(claim.messages)
        async with self._sending:  # one send_many at a time: the transport pools connections
            before = self.breaker = await asyncio.to_thread(self.load_breaker)
            gate = before.gate(self.clock.now())
            allowed = {Gate.PAUSED: 0, Gate.PROBE: 1}.get(gate, len(envelopes))
            go, held = envelopes[:allowed], envelopes[allowed:]
            halt = self._halt(claim, {} if heard is None else heard)
            sent = await self._send_many(go, halt) if go else []
            if self.breaker != before:
                await asyncio.to_thread(self.save_breaker, before)
        if len(sent) != len(go):
            raise FeedpipeError(f"the transport answered {len(sent)} of {len(go)}")
        if self.breaker.is_open:
            self._pause(self.breaker)
        return sent + [unsent(e, "sending paused") for e in held] + broken

    def _halt(self, claim: Claim, heard: dict[int, Delivery]) -> Halt:
        """Feeds each delivery to the breaker (True, stop the batch, once it is open) and
        queues its result, unless it had no server reply (whether the whole batch reached no
        server is known only at its end)."""
        messages = {m.outbox_id: m for m in claim.messages}
        limits = self.options.limits

        def halt(delivery: Delivery) -> bool:
            message = messages.get(delivery.outbox_id)
            rcpt = message.recipient.email if message is not None else ""
            self.breaker = self.breaker.observe(delivery, rcpt, self.clock.now(), limits)
            if message is not None and recorded_at_once(delivery):
                heard[delivery.outbox_id] = delivery
                self._answered(self.policy.decide(message, delivery, self.clock.now()))
            return self.breaker.is_open

        return halt

    def _answered(self, decision: Decision) -> None:
        """Queue a result for recording, from the event loop's thread or another one."""
        if threading.get_ident() == self._loop_thread:
            self.inflight.answered([decision])
        else:
            self._loop.call_soon_threadsafe(self.inflight.answered, [decision])

    async def _take(self, envelope: Envelope) -> bool:
        """A connection is about to send `envelope`: False (leave it unsent) when the run is
        stopping, the hour budget is spent or the lease was lost; waits for the next slot of
        the shared budget and for room in the recording group."""
        if self._stop or (self._stop_check is not None and self._stop_check()):
            return False
        if self.budget is not None and not await self.budget.acquire():
            self._limited(self.budget)
            return False
        return await self.inflight.take(envelope.outbox_id)

    async def _ready(self, envelope: Envelope) -> bool:
        return await self.inflight.ready(envelope.outbox_id)

    def _limited(self, budget: SharedBudget) -> None:
        self._stop = True
        if self.report.limited is None and budget.resume_at is not None:
            at = budget.resume_at.strftime("%H:%M:%S UTC")
            reason = f"max_per_hour = {budget.per_hour} reached; sending resumes at {at}"
            self.report = replace(self.report, limited=reason)

    def load_breaker(self) -> Breaker:
        return Breaker.from_json(self.store.get_meta(meta_key(self.options.transport_name)))

    def save_breaker(self, before: Breaker) -> None:
        """Store the breaker and log what changed."""
        after, name = self.breaker, self.options.transport_name
        self.store.set_meta(meta_key(name), after.to_json())
        fields: dict[str, object] = {"transport": name, "reply": after.paused, "fix": after.fix}
        if after.is_open and not before.is_open:
            LOG.warning("sending paused: %s — %s", after.paused, after.fix, extra=_extra(fields))
        elif before.is_open and not after.is_open:
            LOG.info("sending resumed: a probe was accepted", extra=_extra({"transport": name}))
        elif after.probes > before.probes:
            fields["next_probe"] = after.probe_at
            LOG.info("sending still paused: %s", after.paused, extra=_extra(fields))

    def _pause(self, breaker: Breaker) -> bool:
        self._stop = True
        self.report = replace(self.report, paused=breaker.paused)
        return False

    async def _send_many(
        self, envelopes: Sequence[Envelope], halt: Callable[[Delivery], bool]
    ) -> list[Delivery]:
        started = time.perf_counter()
        try:
            return await self.transport.send_many(
                envelopes, halt, take=self._take, ready=self._ready
            )
        finally:
            if self.on_latency is not None:
                self.on_latency(time.perf_counter() - started, len(envelopes))

    def envelopes(
        self, messages: Sequence[ClaimedMessage]
    ) -> tuple[list[Envelope], list[Delivery]]:
        """Each message's bytes from its edition template (Date = now); failures as deliveries."""
        templates = self.templates.get_many({m.edition_key for m in messages})
        date = self.clock.now()
        envelopes: list[Envelope] = []
        broken: list[Delivery] = []
        for m in messages:
            template = templates.get(m.edition_key)
            if template is None:
                broken.append(unbuildable(m, f"edition {m.edition_key[:12]} is missing"))
                continue
            try:
                data = personalize_template(template, m.recipient, m.message_id, date)
            except FeedpipeError as exc:
                broken.append(unbuildable(m, str(exc)))
                continue
            sender = self.options.envelope_sender(m.outbox_id)
            crlf = self.templates.crlf[m.edition_key]
            envelopes.append(Envelope(m.outbox_id, sender, m.recipient.email, data, crlf))
        return envelopes, broken

    def decide(
        self, messages: Sequence[ClaimedMessage], deliveries: Sequence[Delivery], outage: bool
    ) -> list[Decision]:
        """Decisions for deliveries (`outage`: the batch reached no server). Unsent ones are
        due again at once, or when the hour budget frees up."""
        by_id = {m.outbox_id: m for m in messages}
        if outage:
            self._stop = True
            reason = deliveries[0].reply.removeprefix("not sent: ")
            self.report = replace(self.report, server_down=True, down_reason=reason)
        now = self.clock.now()
        resume = self.budget.resume_at if self.budget is not None else None
        decisions = [self.policy.decide(by_id[d.outbox_id], d, now, outage) for d in deliveries]
        if resume is None:
            return decisions
        return [
            replace(d, next_attempt_at=resume) if o.outcome is Outcome.UNSENT else d
            for d, o in zip(decisions, deliveries, strict=True)
        ]

    def _tally(self, deliveries: Sequence[Delivery]) -> None:
        counts = dict.fromkeys(Outcome, 0)
        for d in deliveries:
            counts[d.outcome] += 1
        r = self.report
        self.report = replace(
            r,
            sent=r.sent + counts[Outcome.SENT],
            retry=r.retry + counts[Outcome.RETRY],
            throttled=r.throttled + counts[Outcome.THROTTLED],
            failed=r.failed + counts[Outcome.FAILED],
            soft=r.soft + counts[Outcome.SOFT],
            blocked=r.blocked + counts[Outcome.BLOCKED],
            batches=r.batches + 1,
        )

    def _recorded(self, recorded: RecordReport) -> None:
        r = self.report
        self.report = replace(
            r,
            cancelled=r.cancelled + recorded.cancelled,
            bounced_subscribers=r.bounced_subscribers + len(recorded.bounced_subscribers),
        )

    def _count(self, cancelled: int, expired: int = 0) -> None:
        if cancelled or expired:
            r = self.report
            self.report = replace(r, cancelled=r.cancelled + cancelled, expired=r.expired + expired)


def recorded_at_once(delivery: Delivery) -> bool:
    """A delivery with a result to record at once: the server replied, or may have the
    message (its end went out, then the connection was lost), or the message was written;
    not one that reached no server, nor one left unsent."""
    if delivery.outcome is Outcome.UNSENT:
        return False
    return (
        delivery.outcome is not Outcome.RETRY or delivery.code is not None or delivery.content_sent
    )


def _extra(fields: Mapping[str, object]) -> dict[str, object]:
    """`extra` for a log record: the fields the worker's structured log formatter prints."""
    return {"fields": fields}


__all__ = ["DispatchOptions", "Dispatcher", "OutboxState", "worker_id"]
