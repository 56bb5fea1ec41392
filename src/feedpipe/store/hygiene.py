"""Store mixin for list hygiene: the suppression list, delivery events and rates, inbound mail."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feedpipe.model import PENDING, Action, Decision, OutboxState, email_key
from feedpipe.model.hygiene import (
    DeliveryEvent,
    Effect,
    EventKind,
    InboundRecord,
    InboundStatus,
    MessageRef,
    Rates,
    SoftLimit,
    Suppression,
    SuppressionReason,
)
from feedpipe.store.outbox_tables import outbox
from feedpipe.store.schema import metadata
from feedpipe.store.sqlutil import CHUNK, chunked, dialect_insert, run_many
from feedpipe.store.subscribers import move_subscribers, subscribers
from feedpipe.store.types import UTCDateTime

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email_key", sa.String(320), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

delivery_events = sa.Table(
    "delivery_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("subscriber_id", sa.Integer),  # no foreign key: events outlive removed subscribers
    sa.Column("outbox_id", sa.Integer),
    sa.Column("edition_key", sa.String(64)),
    sa.Index("ix_delivery_events_at", "at"),
    sa.Index("ix_delivery_events_subscriber", "subscriber_id", "kind", "at"),
    sa.Index("ix_delivery_events_edition", "edition_key"),
)

inbound_messages = sa.Table(
    "inbound_messages",
    metadata,
    sa.Column("key", sa.String(500), primary_key=True),  # the Message-ID (or a digest of it all)
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary),
    sa.Index("ix_inbound_messages_status", "status", "received_at"),
)

_BOUNCES = (EventKind.HARD.value,)


class HygieneMixin:
    """Suppressions, delivery events, rates and the inbound messages seen."""

    engine: Engine

    # -- the suppression list -----------------------------------------------------------------

    def suppress(self, entry: Suppression, action: Action | None = None) -> bool:
        """Add `entry` (an address already listed keeps its first entry); with `action`, the
        subscriber of that address moves by the table and their queue is cancelled, in the
        same transaction. True when the address was not listed before."""
        with self.engine.begin() as conn:
            added = suppress_rows(conn, [entry]) > 0
            if action is not None:
                stop_addresses(conn, [entry.email], action, entry.created_at)
        return added

    def unsuppress(self, email: str) -> bool:
        """Take an address off the list; whether it was on it."""
        stmt = sa.delete(suppressions).where(suppressions.c.email_key == email_key(email))
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def suppressions(self, reason: SuppressionReason | None = None) -> list[Suppression]:
        """The list, newest first."""
        stmt = sa.select(suppressions).order_by(
            suppressions.c.created_at.desc(), suppressions.c.email_key
        )
        if reason is not None:
            stmt = stmt.where(suppressions.c.reason == reason.value)
        with self.engine.connect() as conn:
            return [_suppression(r) for r in conn.execute(stmt)]

    def suppressed(self, emails: Sequence[str]) -> dict[str, Suppression]:
        """The entries of those of `emails` that are suppressed, by address key."""
        keys = sorted({email_key(e) for e in emails})
        stmt = sa.select(suppressions)
        with self.engine.connect() as conn:
            if len(keys) > 20 * CHUNK:  # one scan instead of many IN lists
                wanted = set(keys)
                return {
                    r.email_key: _suppression(r)
                    for r in conn.execute(stmt)
                    if r.email_key in wanted
                }
            return {
                r.email_key: _suppression(r)
                for chunk in chunked(keys)
                for r in conn.execute(stmt.where(suppressions.c.email_key.in_(chunk)))
            }

    # -- delivery events and rates ------------------------------------------------------------

    def soft_bounces(self, subscriber_id: int, since: datetime) -> int:
        """Soft bounces of a subscriber since `since` (a delivery deletes them: a fresh start)."""
        stmt = sa.select(sa.func.count()).where(
            delivery_events.c.subscriber_id == subscriber_id,
            delivery_events.c.kind == EventKind.SOFT.value,
            delivery_events.c.at >= since,
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def rates_since(self, since: datetime, label: str) -> Rates:
        """Messages sent since `since`, and the bounces and complaints that came in since."""
        sent = sa.select(sa.func.count()).where(
            outbox.c.state == OutboxState.SENT.value, outbox.c.sent_at >= since
        )
        with self.engine.connect() as conn:
            count = int(conn.execute(sent).scalar() or 0)
            events = _event_counts(conn, delivery_events.c.at >= since)
        return Rates(label, count, events[EventKind.HARD], events[EventKind.COMPLAINT])

    def rates_by_edition(self, limit: int) -> list[Rates]:
        """Rates of the `limit` editions sent last, newest first."""
        last = sa.func.max(outbox.c.sent_at).label("last")
        stmt = (
            sa.select(outbox.c.edition_key, sa.func.count().label("sent"), last)
            .where(outbox.c.state == OutboxState.SENT.value)
            .group_by(outbox.c.edition_key)
            .order_by(last.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            out = []
            for r in rows:
                events = _event_counts(conn, delivery_events.c.edition_key == r.edition_key)
                out.append(
                    Rates(
                        r.edition_key, r.sent, events[EventKind.HARD], events[EventKind.COMPLAINT]
                    )
                )
        return out

    # -- messages we sent, as inbound mail names them -----------------------------------------

    def message_refs(
        self, outbox_ids: Sequence[int] = (), message_ids: Sequence[str] = ()
    ) -> list[MessageRef]:
        """The outbox messages with these ids or Message-IDs."""
        cols = (
            outbox.c.id,
            outbox.c.subscriber_id,
            outbox.c.edition_key,
            outbox.c.recipient,
            outbox.c.message_id,
            outbox.c.state,
        )
        found: dict[int, MessageRef] = {}
        wheres = [outbox.c.id.in_(c) for c in chunked(sorted(set(outbox_ids)))]
        wheres += [outbox.c.message_id.in_(c) for c in chunked(sorted(set(message_ids)))]
        with self.engine.connect() as conn:
            for where in wheres:
                for r in conn.execute(sa.select(*cols).where(where)):
                    found[r.id] = MessageRef(r[0], r[1], r[2], r[3], r[4], OutboxState(r[5]))
        return sorted(found.values(), key=lambda m: m.outbox_id)

    def last_sent_to(self, recipient: str) -> MessageRef | None:
        """The newest message sent to an address (for bounces that name only the address)."""
        stmt = (
            sa.select(
                outbox.c.id,
                outbox.c.subscriber_id,
                outbox.c.edition_key,
                outbox.c.recipient,
                outbox.c.message_id,
                outbox.c.state,
            )
            .join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
            .where(
                subscribers.c.email_key == email_key(recipient),
                outbox.c.state == OutboxState.SENT.value,
            )
            .order_by(outbox.c.sent_at.desc(), outbox.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            r = conn.execute(stmt).first()
        return None if r is None else MessageRef(r[0], r[1], r[2], r[3], r[4], OutboxState(r[5]))

    # -- inbound messages ---------------------------------------------------------------------

    def process_inbound(
        self, record: InboundRecord, effects: Sequence[Effect], soft: SoftLimit
    ) -> list[str] | None:
        """Record an inbound message and what it does, in one transaction, once: None (and no
        change) when its key was seen before. Soft bounces reaching `soft` suppress the
        address; returns those addresses."""
        values = {
            "key": record.key,
            "received_at": record.received_at,
            "status": record.status.value,
            "kind": record.kind,
            "summary": record.summary,
            "raw": record.raw,
        }
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, inbound_messages).values(values).on_conflict_do_nothing()
            if not conn.execute(stmt.returning(inbound_messages.c.key)).all():
                return None
            insert_events(conn, [e.event for e in effects if e.event is not None])
            suppress_rows(conn, [e.suppression for e in effects if e.suppression is not None])
            for e in effects:
                if e.action is not None:
                    stop_addresses(conn, [e.address], e.action, record.received_at)
            softs = [e.event for e in effects if e.event and e.event.kind is EventKind.SOFT]
            return _soft_limit(conn, softs, soft, record.received_at)

    def inbound_seen(self, key: str) -> InboundRecord | None:
        with self.engine.connect() as conn:
            r = conn.execute(
                sa.select(inbound_messages).where(inbound_messages.c.key == key)
            ).first()
        return None if r is None else _inbound(r)

    def inbound_records(
        self, status: InboundStatus | None, limit: int = 100
    ) -> list[InboundRecord]:
        """Inbound messages, newest first (without their raw bytes)."""
        cols = [c for c in inbound_messages.c if c.name != "raw"]
        stmt = sa.select(*cols, sa.null().label("raw")).order_by(
            inbound_messages.c.received_at.desc(), inbound_messages.c.key
        )
        if status is not None:
            stmt = stmt.where(inbound_messages.c.status == status.value)
        with self.engine.connect() as conn:
            return [_inbound(r) for r in conn.execute(stmt.limit(limit))]

    def inbound_counts(self) -> dict[InboundStatus, int]:
        stmt = sa.select(inbound_messages.c.status, sa.func.count()).group_by(
            inbound_messages.c.status
        )
        with self.engine.connect() as conn:
            found = {InboundStatus(s): int(n) for s, n in conn.execute(stmt)}
        return {s: found.get(s, 0) for s in InboundStatus}


def _soft_limit(
    conn: Connection, softs: Sequence[DeliveryEvent], soft: SoftLimit, now: datetime
) -> list[str]:
    """Suppress the subscribers whose soft bounces since `soft.since` reached `soft.limit`."""
    out = []
    for event in softs:
        if event.subscriber_id is None:
            continue
        count = conn.execute(
            sa.select(sa.func.count()).where(
                delivery_events.c.subscriber_id == event.subscriber_id,
                delivery_events.c.kind == EventKind.SOFT.value,
                delivery_events.c.at >= soft.since,
            )
        ).scalar()
        if int(count or 0) >= soft.limit:
            detail = f"{count} soft bounces since {soft.since:%Y-%m-%d}"
            entry = Suppression(event.recipient, SuppressionReason.SOFT_BOUNCE, event.source, now,
                                detail)  # fmt: skip
            if suppress_rows(conn, [entry]):
                stop_addresses(conn, [event.recipient], Action.BOUNCE, now)
                out.append(event.recipient)
    return out


def suppress_rows(conn: Connection, entries: Sequence[Suppression]) -> int:
    """Insert suppression entries; addresses already listed keep theirs. Rows inserted."""
    if not entries:
        return 0
    rows = {
        email_key(e.email): {
            "email_key": email_key(e.email),
            "email": e.email,
            "reason": e.reason.value,
            "source": e.source,
            "detail": e.detail[:1000],
            "created_at": e.created_at,
        }
        for e in entries
    }
    stmt = dialect_insert(conn, suppressions).on_conflict_do_nothing()
    stmt = stmt.returning(suppressions.c.email_key)
    return sum(len(conn.execute(stmt.values(row)).all()) for row in rows.values())


def insert_events(conn: Connection, events: Sequence[DeliveryEvent]) -> None:
    if events:
        conn.execute(sa.insert(delivery_events), [_event_values(e) for e in events])


def delete_soft_events(conn: Connection, subscriber_ids: Sequence[int]) -> None:
    """A message delivered: the subscriber's soft bounces start over (executemany of one
    statement built once: it runs for every small group of results a dispatcher records)."""
    if subscriber_ids:
        run_many(conn, _soft_statement(), [{"b_sub": i} for i in sorted(set(subscriber_ids))])


@functools.cache
def _soft_statement() -> Any:
    return sa.delete(delivery_events).where(
        delivery_events.c.subscriber_id == sa.bindparam("b_sub"),
        delivery_events.c.kind == EventKind.SOFT.value,
    )


def stop_addresses(conn: Connection, emails: Sequence[str], action: Action, at: datetime) -> None:
    """Move the subscribers of these addresses by `action` and cancel their queued messages."""
    keys = sorted({email_key(e) for e in emails})
    ids = [
        i
        for chunk in chunked(keys)
        for i in conn.execute(
            sa.select(subscribers.c.id).where(subscribers.c.email_key.in_(chunk))
        ).scalars()
    ]
    if not ids:
        return
    move_subscribers(conn, ids, action, at)
    for chunk in chunked(ids):
        conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.subscriber_id.in_(chunk), outbox.c.state.in_([s.value for s in PENDING])
            )
            .values(state=OutboxState.CANCELLED.value, next_attempt_at=None, updated_at=at)
        )


def smtp_bounce_events(conn: Connection, decisions: Sequence[Decision], now: datetime) -> None:
    """A hard bounce event per SMTP recipient-hard reply (for the rates)."""
    if not decisions:
        return
    replies = {d.outbox_id: f"{d.code} {d.reply}" for d in decisions}
    cols = (outbox.c.id, outbox.c.subscriber_id, outbox.c.edition_key, outbox.c.recipient)
    events = [
        DeliveryEvent(EventKind.HARD, r.recipient, now, "smtp", replies[r.id], r[1], r.id, r[2])
        for chunk in chunked(sorted(replies))
        for r in conn.execute(sa.select(*cols).where(outbox.c.id.in_(chunk)))
    ]
    insert_events(conn, events)


def suppress_subscribers(conn: Connection, ids: Sequence[int], now: datetime, detail: str) -> None:
    """Put these subscribers' addresses on the list as bounces (the bounce limit was reached)."""
    emails = [
        e
        for chunk in chunked(sorted(set(ids)))
        for e in conn.execute(
            sa.select(subscribers.c.email).where(subscribers.c.id.in_(chunk))
        ).scalars()
    ]
    suppress_rows(
        conn, [Suppression(e, SuppressionReason.BOUNCE, "smtp", now, detail) for e in emails]
    )


def suppressed_between(conn: Connection, after: int, last: int) -> frozenset[int]:
    """Ids in (after, last] of subscribers whose address is on the suppression list (a fill
    page's: one join, however many subscribers the page holds)."""
    stmt = (
        sa.select(subscribers.c.id)
        .join(suppressions, suppressions.c.email_key == subscribers.c.email_key)
        .where(subscribers.c.id > after, subscribers.c.id <= last)
    )
    return frozenset(conn.execute(stmt).scalars())


def suppressed_clause() -> sa.ColumnElement[bool]:
    """True for outbox rows whose recipient is on the suppression list (for claims)."""
    return sa.exists().where(suppressions.c.email_key == sa.func.lower(outbox.c.recipient))


def _event_counts(conn: Connection, where: sa.ColumnElement[bool]) -> dict[EventKind, int]:
    stmt = (
        sa.select(delivery_events.c.kind, sa.func.count())
        .where(where)
        .group_by(delivery_events.c.kind)
    )
    found = {EventKind(k): int(n) for k, n in conn.execute(stmt)}
    return {k: found.get(k, 0) for k in EventKind}


def _event_values(e: DeliveryEvent) -> dict[str, Any]:
    return {
        "kind": e.kind.value,
        "recipient": e.recipient,
        "at": e.at,
        "source": e.source,
        "detail": e.detail[:1000],
        "subscriber_id": e.subscriber_id,
        "outbox_id": e.outbox_id,
        "edition_key": e.edition_key,
    }


def _suppression(r: Any) -> Suppression:
    return Suppression(r.email, SuppressionReason(r.reason), r.source, r.created_at, r.detail)


def _inbound(r: Any) -> InboundRecord:
    raw = None if r.raw is None else bytes(r.raw)
    return InboundRecord(r.key, r.received_at, InboundStatus(r.status), r.kind, r.summary, raw)


__all__ = ["HygieneMixin", "delivery_events", "suppressions"]
