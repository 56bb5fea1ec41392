"""Claiming outbox rows: crashed leases first, then due rows; the heartbeat; the `sending` mark."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpipe.model import CLAIMABLE, PENDING, ClaimedMessage, MessageKind, OutboxState, Recipient
from feedpipe.store.hygiene import suppressed_clause
from feedpipe.store.outbox_tables import outbox
from feedpipe.store.sqlutil import chunked, run_many
from feedpipe.store.subscribers import subscribers
from feedpipe.store.types import UTCDateTime

_CLAIMABLE = [s.value for s in CLAIMABLE]


def _pick(conn: Connection, where: sa.ColumnElement[bool], limit: int) -> sa.Select[Any]:
    """Ids, subscriber status and suppression of up to `limit` rows, locked where supported."""
    # A suppressed recipient gets no digest; a confirmation (a new double opt-in) still goes.
    suppressed = sa.and_(outbox.c.kind == MessageKind.DIGEST.value, suppressed_clause())
    stmt = (
        sa.select(outbox.c.id, subscribers.c.status, suppressed.label("suppressed"))
        .join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
        .where(where)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=outbox)
    return stmt


def lease_expired(conn: Connection, now: datetime, limit: int) -> sa.Select[Any]:
    """Rows a dispatcher leased and did not finish before its lease ran out (it crashed)."""
    held = outbox.c.lease_until.is_not(None)  # the partial index ix_outbox_lease
    expired = sa.and_(held, outbox.c.lease_until <= now, outbox.c.state.in_(_CLAIMABLE))
    return _pick(conn, expired, limit)


def due_rows(conn: Connection, now: datetime, limit: int) -> sa.Select[Any]:
    """Unfinished rows whose time has come (leased rows are due at their lease end)."""
    due = sa.and_(outbox.c.state.in_(_CLAIMABLE), outbox.c.next_attempt_at <= now)
    return _pick(conn, due, limit)


def lease_rows(ids: list[int], owner: str, until: datetime, now: datetime) -> Any:
    """Lease rows to `owner` until `until`; state and attempts stay as they are."""
    return (
        sa.update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(lease_owner=owner, lease_until=until, next_attempt_at=until, updated_at=now)
        .returning(
            outbox.c.id,
            outbox.c.subscriber_id,
            outbox.c.edition_key,
            outbox.c.recipient,
            outbox.c.personalisation,
            outbox.c.message_id,
            outbox.c.attempts,
        )
    )


def claimed(row: Any) -> ClaimedMessage:
    personal = json.loads(row.personalisation)
    recipient = Recipient(
        row.subscriber_id,
        row.recipient,
        personal.get("name"),
        personal["unsubscribe_url"],
        personal["preferences_url"],
        bool(personal.get("first", False)),
        personal.get("given_name"),  # absent in rows queued before migration 0013
    )
    return ClaimedMessage(row.id, row.edition_key, recipient, row.message_id, row.attempts + 1)


def _held(owner: str, chunk: Sequence[int]) -> sa.ColumnElement[bool]:
    return sa.and_(
        outbox.c.id.in_(chunk),
        outbox.c.lease_owner == owner,
        outbox.c.state.in_(_CLAIMABLE),
    )


def renew_rows(
    conn: Connection, owner: str, ids: Sequence[int], until: datetime, now: datetime
) -> set[int]:
    """Move `owner`'s lease on `ids` to `until`; the ids it still held."""
    kept: set[int] = set()
    for chunk in chunked(sorted(ids)):
        stmt = (
            sa.update(outbox)
            .where(_held(owner, chunk))
            .values(lease_until=until, next_attempt_at=until, updated_at=now)
            .returning(outbox.c.id)
        )
        kept.update(conn.execute(stmt).scalars())
    return kept


def mark_sending(conn: Connection, owner: str, ids: Sequence[int], now: datetime) -> None:
    """A connection took these rows: `sending` (what a crash may have delivered). One statement
    run per row (executemany; no expanding IN to render on every call)."""
    if ids:
        run_many(
            conn, _mark_statement(), [{"b_id": i, "b_owner": owner, "b_now": now} for i in ids]
        )


@functools.cache
def _mark_statement() -> Any:
    pending = sa.or_(*(outbox.c.state == s.value for s in PENDING))
    mine = outbox.c.lease_owner == sa.bindparam("b_owner")
    return (
        sa.update(outbox)
        .where(outbox.c.id == sa.bindparam("b_id"), mine, pending)
        .values(
            state=OutboxState.SENDING.value, updated_at=sa.bindparam("b_now", type_=UTCDateTime)
        )
    )
