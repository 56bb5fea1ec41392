"""OutboxService: fill, dispatch and inspect the outbox for one configured site."""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from feedpipe.clock import Clock
from feedpipe.mail.verp import Verp
from feedpipe.model import (
    DispatchReport,
    Failure,
    FailureGroup,
    FillReport,
    MessageKind,
    NewEdition,
    NewMessage,
    OutboxFill,
    OutboxState,
    Recipient,
    SendReport,
    SentEdition,
)
from feedpipe.outbox import rates
from feedpipe.outbox.archive import ISSUE_SCAN, Issue, day_bounds, issue_content, issues
from feedpipe.outbox.breaker import Breaker, BreakerLimits, meta_key
from feedpipe.outbox.fill import fill
from feedpipe.outbox.policy import message_id

if TYPE_CHECKING:  # Jinja2, the mail transports and the dispatcher load when first needed
    from feedpipe.digests.service import DigestService
    from feedpipe.emails.render import EmailRenderer
    from feedpipe.mail import Transport
    from feedpipe.model.retract import RetractReport
    from feedpipe.outbox.dispatch import DispatchOptions, Latency, Progress, Stop
    from feedpipe.outbox.simulate import SimulatedSend
    from feedpipe.parallel import Tick
    from feedpipe.settings import Settings
    from feedpipe.store import Store

WAITING = (OutboxState.QUEUED, OutboxState.RETRY, OutboxState.SENDING)


@dataclass(frozen=True, slots=True)
class Outage:
    """What stopped a dispatch: one line, and whether it is local (the .eml transport's folder)
    or the mail server."""

    line: str
    local: bool = True


@dataclass
class OutboxService:
    """`feedpipe send` and `feedpipe outbox` over the store, with the clock injected."""

    settings: Settings
    store: Store
    clock: Clock
    digests: DigestService
    rng: random.Random = field(default_factory=random.Random)

    @cached_property
    def renderer(self) -> EmailRenderer:
        """One Jinja2 environment and post-text cache for every fill and message of a process."""
        from feedpipe.emails.render import EmailRenderer

        return EmailRenderer(self.settings)

    def options(self) -> DispatchOptions:
        from feedpipe.outbox.dispatch import DispatchOptions

        email = self.settings.email
        smtp = email.transport == "smtp"
        return DispatchOptions(
            sender=email.from_address,
            batch_size=email.batch_size,
            lease=timedelta(seconds=self.settings.lease_seconds),
            max_attempts=email.max_attempts,
            bounce_limit=email.bounce_limit,
            transport_name=self.transport_name,
            limits=BreakerLimits(email.pause_after, email.pause_after_recipients),
            connections=email.smtp.concurrency if smtp else 1,
            max_per_second=email.smtp.max_per_second if smtp else None,
            max_per_hour=email.smtp.max_per_hour if smtp else None,
            verp=self.verp(),
        )

    def verp(self) -> Verp | None:
        """Bounce addresses signed with the token key, when `[email] bounce_address` is set."""
        address = self.settings.email.bounce_address
        return None if address is None else Verp(address, self.digests.secret())

    @property
    def transport_name(self) -> str:
        """The configured transport, as its circuit breaker is named."""
        email = self.settings.email
        if email.transport == "smtp":
            return f"smtp:{email.smtp.host}:{email.smtp.port}"
        return email.transport

    def outage(self, report: DispatchReport) -> Outage | None:
        """Why a dispatch delivered nothing more, naming what failed: the mail server, or the
        outbox folder of the .eml transport (read-only, full); None when it did not stop."""
        if not report.server_down:
            return None
        if self.settings.email.transport == "smtp":
            return Outage(f"mail server unreachable: {report.down_reason}", local=False)
        return Outage(f"nothing could be written to the outbox folder: {report.down_reason}")

    def breaker(self) -> Breaker:
        """The configured transport's circuit breaker as stored (closed when never opened)."""
        return Breaker.from_json(self.store.get_meta(meta_key(self.transport_name)))

    def resume(self) -> Breaker:
        """Close the breaker at once (`feedpipe outbox resume`); returns how it stood. The
        complaints counted so far are accepted: the complaint-rate check starts over."""
        was = self.breaker()
        self.store.set_meta(meta_key(self.transport_name), Breaker().to_json())
        self.store.set_meta(rates.ACK_KEY, self.clock.now().isoformat())
        return was

    def check_rates(self) -> Breaker:
        """Pause sending (the breaker, with the reason) above the complaint-rate limit."""
        email = self.settings.email
        return rates.check(
            self.store,
            self.transport_name,
            self.clock.now(),
            email.complaint_rate_limit,
            email.rate_min_sent,
        )

    def deliverability(self) -> rates.Deliverability:
        """Bounce and complaint rates over 7 and 30 days and for the last editions."""
        return rates.deliverability(self.store, self.clock.now())

    def deliverability_json(self) -> dict[str, Any]:
        """The rates, the limit and the inbound messages by status, as JSON."""
        counts = {str(k): n for k, n in self.store.inbound_counts().items()}
        limit = self.settings.email.complaint_rate_limit
        return rates.to_json(self.deliverability(), limit, counts)

    def simulate(
        self, start: datetime, end: datetime, email: str | None = None, tick: Tick | None = None
    ) -> list[SimulatedSend]:
        """Every digest the planner would send from `start` to `end`; sends and writes nothing.
        `tick(hours simulated, hours in all)` after each send found, and at the end."""
        from feedpipe.outbox.simulate import simulate_sends

        hours = max(1, int((end - start).total_seconds() // 3600))
        sends = []
        for send in simulate_sends(self.digests, self.renderer, start, end, email):
            sends.append(send)
            if tick is not None:
                tick(min(hours, int((send.at - start).total_seconds() // 3600)), hours)
        if tick is not None:
            tick(hours, hours)
        return sends

    def fill(self, now: datetime | None = None) -> FillReport:
        """Plan what is due and write it to the outbox (and move watermarks) in one transaction."""
        return fill(self.digests, lambda: self.renderer, now or self.clock.now())

    def drop_retracted(self, now: datetime | None = None) -> RetractReport:
        """Queued digests lose the posts retracted since they were filled (outbox/retract.py)."""
        from feedpipe.outbox.retract import drop_retracted

        sender = self.settings.email.from_address
        return drop_retracted(self.store, lambda: self.renderer, sender, now or self.clock.now())

    async def dispatch(
        self,
        transport: Transport | None = None,
        progress: Progress | None = None,
        stop: Stop | None = None,
        lease: timedelta | None = None,
        on_latency: Latency | None = None,
    ) -> DispatchReport:
        """Send what is due until nothing is (or `stop()`, checked before each batch); the
        transport defaults to the configured one, the lease to `[email] lease_seconds`."""
        from feedpipe.mail import open_transport
        from feedpipe.outbox.dispatch import Dispatcher

        self.check_rates()
        own = transport is None
        used = open_transport(self.settings) if transport is None else transport
        options = self.options() if lease is None else replace(self.options(), lease=lease)
        try:
            dispatcher = Dispatcher(
                self.store, used, self.clock, options, self.rng, on_latency=on_latency
            )
            return await dispatcher.run(progress, stop)
        finally:
            if own:
                await used.aclose()

    def send(
        self, transport: Transport | None = None, progress: Progress | None = None
    ) -> SendReport:
        """Fill, then dispatch until nothing is due."""
        return self.send_filled(self.fill(), progress, transport)

    def send_filled(
        self,
        filled: FillReport,
        progress: Progress | None = None,
        transport: Transport | None = None,
        stop: Stop | None = None,
    ) -> SendReport:
        """Dispatch after `filled` until nothing is due or `stop()` (sync wrapper for the CLI);
        with nothing queued, retrying or leased there is nothing to send: no transport is
        opened."""
        counts = self.counts()
        if not any(counts[state] for state in WAITING):
            return SendReport(filled, DispatchReport(), counts)
        dispatched = asyncio.run(self.dispatch(transport, progress, stop))
        return SendReport(filled, dispatched, self.counts())

    def queue_message(
        self, recipient: Recipient, subject: str, text: str, html: str, kind: MessageKind
    ) -> str:
        """Store a one-off message (a confirmation) as its own edition plus one outbox row, in
        one transaction; the dispatcher sends it like a digest. Returns its Message-ID."""
        now = self.clock.now()
        seed = f"{kind.value}:{recipient.subscriber_id}:{now.isoformat()}:{subject}"
        key = f"{kind.value}-" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        template = self.renderer.single_template(key, subject, text, html)
        edition = NewEdition(key, subject, (), template.dump(), now)
        msg_id = message_id(key, recipient.subscriber_id, self.settings.email.from_address)
        row = NewMessage(key, recipient, msg_id, kind)
        self.store.fill_outbox(lambda: OutboxFill(now, (edition,), (row,), {}))
        return msg_id

    def cancel(self, subscriber_id: int) -> int:
        """Cancel a subscriber's queued messages (unsubscribe, pause, bounce)."""
        return self.store.cancel_outbox(subscriber_id, self.clock.now())

    def counts(self) -> dict[OutboxState, int]:
        return self.store.outbox_counts()

    def sent_editions(self, limit: int, key: str | None = None) -> list[SentEdition]:
        """Editions the server accepted at least one message of, newest first (the archive)."""
        return self.store.sent_editions(limit, key)

    def issues(self, limit: int) -> list[Issue]:
        """The archive: one issue per send day, newest first (outbox/archive.py)."""
        zone = ZoneInfo(self.settings.digest.timezone)
        return issues(self.store.sent_editions(limit * ISSUE_SCAN), zone)[:limit]

    def issue_page(self, day: date, reader: Recipient) -> tuple[Issue, str] | None:
        """A send day's issue and its web page (the digest templates' HTML, for `reader`);
        None when nothing was sent that day."""
        zone = ZoneInfo(self.settings.digest.timezone)
        sent = self.store.sent_editions(ISSUE_SCAN * 50, planned=day_bounds(day, zone))
        found = issues(sent, zone)
        if not found:
            return None
        content = issue_content(found[0], self.store.posts_by_ids(found[0].post_ids))
        if not content.post_count:
            return None
        return found[0], self.renderer.web_page(content, reader)

    def failures(self, limit: int = 10) -> list[Failure]:
        """The most recent failing messages with their last reply."""
        return self.store.outbox_failures(limit)

    def failure_groups(self, limit: int = 10) -> list[FailureGroup]:
        """Failing messages grouped by their last reply."""
        return self.store.outbox_failure_groups(limit)

    def retry_failed(self) -> int:
        """Queue failed messages again (attempts start over)."""
        return self.store.retry_failed_outbox(self.clock.now())
