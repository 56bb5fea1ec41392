"""The one entry point for inbound mail (`feedpipe inbound` on stdin, the worker's IMAP poll):
read it, tie it to the message we sent, apply it once (deduplicated by Message-ID)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from feedpipe.clock import Clock
from feedpipe.mail.inbound import Inbound, Kind, RecipientReport, Verdict, read_inbound
from feedpipe.mail.verp import ForgedTokenError, Verp
from feedpipe.model import Action, email_key
from feedpipe.model.hygiene import (
    DeliveryEvent,
    Effect,
    EventKind,
    InboundRecord,
    InboundStatus,
    MessageRef,
    SoftLimit,
    Suppression,
    SuppressionReason,
)
from feedpipe.settings import Settings
from feedpipe.store import Store
from feedpipe.subscriptions.links import SubscriptionLinks

SOURCES = {Kind.DSN: "dsn", Kind.BOUNCE: "bounce", Kind.COMPLAINT: "arf"}
_EVENTS = {Verdict.HARD: EventKind.HARD, Verdict.SOFT: EventKind.SOFT,
           Verdict.COMPLAINT: EventKind.COMPLAINT}  # fmt: skip
_STOPS = {
    Verdict.HARD: (SuppressionReason.BOUNCE, Action.BOUNCE),
    Verdict.COMPLAINT: (SuppressionReason.COMPLAINT, Action.COMPLAIN),
}


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What processing one message did, in lines for people."""

    key: str
    kind: Kind
    status: InboundStatus
    lines: tuple[str, ...]
    duplicate: bool = False  # seen before: nothing was done again


@dataclass
class _Plan:
    status: InboundStatus = InboundStatus.PROCESSED
    effects: list[Effect] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def keep(self, why: str) -> _Plan:
        self.status = InboundStatus.UNPROCESSED
        self.lines.append(f"kept for the operator: {why}")
        return self


@dataclass
class InboundProcessor:
    """Reads, ties and applies inbound messages: DSNs and bounces (hard: suppressed at once;
    soft: counted), complaints (suppressed at once), auto-replies (ignored), `mailto:`
    unsubscribes; anything else, and anything not about a message we sent, is kept."""

    settings: Settings
    store: Store
    clock: Clock
    links: SubscriptionLinks

    def verp(self) -> Verp | None:
        address = self.settings.email.bounce_address
        return None if address is None else Verp(address, self.links.secret())

    def process(self, raw: bytes) -> InboundResult:
        """Process one message (bytes as received); a message seen before changes nothing."""
        message = read_inbound(raw, self.settings.email.unsubscribe_mailto)
        if self.store.inbound_seen(message.key) is not None:
            return self._seen(message)
        plan = self._plan(message)
        now = self.clock.now()
        record = InboundRecord(
            message.key,
            now,
            plan.status,
            message.kind.value,
            "; ".join([message.summary, *plan.lines])[:2000],
            raw if plan.status is InboundStatus.UNPROCESSED else None,
        )
        days = timedelta(days=self.settings.email.soft_bounce_days)
        soft = SoftLimit(self.settings.email.soft_bounce_limit, now - days)
        suppressed = self.store.process_inbound(record, plan.effects, soft)
        if suppressed is None:  # another process got there first
            return self._seen(message)
        lines = plan.lines + [f"{a}: suppressed (soft-bounce limit)" for a in suppressed]
        return InboundResult(message.key, message.kind, plan.status, tuple(lines))

    def unprocessed(self, limit: int = 100) -> list[InboundRecord]:
        """Messages kept for the operator, newest first."""
        return self.store.inbound_records(InboundStatus.UNPROCESSED, limit)

    def _seen(self, message: Inbound) -> InboundResult:
        found = self.store.inbound_seen(message.key)
        status = found.status if found else InboundStatus.PROCESSED
        line = f"{message.key}: already {status.value}; nothing done again"
        return InboundResult(message.key, message.kind, status, (line,), duplicate=True)

    def _plan(self, message: Inbound) -> _Plan:
        plan = _Plan()
        if message.kind is Kind.AUTO_REPLY:
            plan.lines.append("auto-reply: ignored")
        elif message.kind is Kind.UNSUBSCRIBE:
            self._unsubscribe(message, plan)
        elif message.kind in SOURCES:
            self._report(message, plan)
        else:
            plan.keep("not a bounce, complaint, auto-reply or unsubscribe")
        return plan

    def _unsubscribe(self, message: Inbound, plan: _Plan) -> None:
        address = message.sender or ""
        found = self.store.subscriber_by_email(address)
        if found is None:
            plan.lines.append(f"{address} is not a subscriber; nothing to do")
            return
        plan.effects.append(Effect(found.email, action=Action.UNSUBSCRIBE))
        plan.lines.append(f"unsubscribed {found.email}")

    def _report(self, message: Inbound, plan: _Plan) -> None:
        verp = self.verp()
        try:
            named = verp.find(message.envelope) if verp is not None else None
        except ForgedTokenError as exc:
            plan.keep(f"refused: {exc}")
            return
        refs = self.store.message_refs([named] if named else [], message.original_ids)
        if named is not None and named not in {r.outbox_id for r in refs}:
            plan.keep(f"about outbox message {named}, which feedpipe never sent")
            return
        if not refs and message.original_ids:
            plan.keep(f"about {message.original_ids[0]}, a message feedpipe never sent")
            return
        reports = message.reports or _unnamed(message, refs)
        for report in reports:
            self._one(message, report, refs, plan)
        if not plan.effects and plan.status is InboundStatus.PROCESSED and not plan.lines:
            plan.keep("names no recipient")

    def _one(
        self, message: Inbound, report: RecipientReport, refs: Sequence[MessageRef], plan: _Plan
    ) -> None:
        if report.verdict is Verdict.NONE:
            plan.lines.append(f"{report.address}: {report.detail}; nothing to do")
            return
        if report.verdict is Verdict.POLICY:
            plan.lines.append(
                f"{report.address}: a sender or policy failure ({report.detail}); nobody penalised"
            )
            return
        ref = _match(report.address, refs) or self.store.last_sent_to(report.address)
        if ref is None:
            plan.keep(f"{report.address}: feedpipe sent it nothing")
            return
        source, now = SOURCES[message.kind], self.clock.now()
        event = DeliveryEvent(
            _EVENTS[report.verdict], ref.recipient, now, source, report.detail,
            ref.subscriber_id, ref.outbox_id, ref.edition_key,
        )  # fmt: skip
        stop = _STOPS.get(report.verdict)
        entry = stop and Suppression(ref.recipient, stop[0], source, now, report.detail)
        plan.effects.append(Effect(ref.recipient, event, entry, stop and stop[1]))
        what = {Verdict.HARD: "hard bounce: suppressed", Verdict.SOFT: "soft bounce: counted",
                Verdict.COMPLAINT: "complaint: suppressed"}[report.verdict]  # fmt: skip
        plan.lines.append(f"{ref.recipient}: {what} ({report.detail})")


def _match(address: str, refs: Sequence[MessageRef]) -> MessageRef | None:
    """The message of `refs` sent to `address`; the only one when a report names none we know
    (a recipient rewritten or redacted on the way)."""
    key = email_key(address)
    found = [r for r in refs if email_key(r.recipient) == key]
    return found[0] if found else (refs[0] if len(refs) == 1 and "@" not in address else None)


def _unnamed(message: Inbound, refs: Sequence[MessageRef]) -> tuple[RecipientReport, ...]:
    """A complaint that names nobody (Microsoft's sparse reports): the message it is about."""
    if message.kind is not Kind.COMPLAINT:
        return ()
    return tuple(RecipientReport(r.recipient, Verdict.COMPLAINT, "feedback report") for r in refs)
