"""Recording dispatch results: sent, retry, failed, and bounce counting (SQL, one transaction)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpipe.model import CLAIMABLE, PENDING, Action, Decision, OutboxState, RecordReport
from feedpipe.store.hygiene import delete_soft_events, suppress_subscribers
from feedpipe.store.outbox_tables import outbox, subscriber_bounces
from feedpipe.store.sqlutil import dialect_insert, run_many
from feedpipe.store.subscribers import move_subscribers
from feedpipe.store.types import UTCDateTime


def _unfinished() -> sa.ColumnElement[bool]:
    """The row is still claimable (no expanding IN: these statements run as executemany)."""
    return sa.or_(*(outbox.c.state == s.value for s in CLAIMABLE))


def finish_rows(ids: Sequence[int], state: OutboxState, now: datetime) -> Any:
    return (
        sa.update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            state=state.value,
            next_attempt_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )


@functools.cache
def _sent_statement() -> Any:
    """Built once: results are recorded a small group at a time, so building costs."""
    now = sa.bindparam("b_now", type_=UTCDateTime)
    return (
        sa.update(outbox)
        .where(outbox.c.id == sa.bindparam("b_id"), _unfinished())
        .values(
            state=OutboxState.SENT.value,
            attempts=outbox.c.attempts + 1,
            sent_at=now,
            updated_at=now,
            next_attempt_at=None,
            lease_owner=None,
            lease_until=None,
            last_code=sa.bindparam("b_code"),
            last_reply=sa.bindparam("b_reply"),
        )
    )


def record_sent(conn: Connection, sent: Sequence[Decision], now: datetime) -> None:
    """Sent (an attempt) is recorded even if the lease was lost meanwhile: it is true either way."""
    if not sent:
        return
    rows = [{"b_id": d.outbox_id, "b_code": d.code, "b_reply": d.reply, "b_now": now} for d in sent]
    run_many(conn, _sent_statement(), rows)


def record_others(conn: Connection, owner: str, decided: Sequence[Decision], now: datetime) -> None:
    """Retry and failure (attempts + 1 when counted), only while this worker holds the lease."""
    if not decided:
        return
    stmt = (
        sa.update(outbox)
        .where(
            outbox.c.id == sa.bindparam("b_id"),
            _unfinished(),
            outbox.c.lease_owner == owner,
        )
        .values(
            state=sa.bindparam("b_state"),
            next_attempt_at=sa.bindparam("b_next", type_=UTCDateTime),
            attempts=outbox.c.attempts + sa.bindparam("b_count"),
            updated_at=sa.bindparam("b_now", type_=UTCDateTime),
            lease_owner=None,
            lease_until=None,
            last_code=sa.bindparam("b_code"),
            last_reply=sa.bindparam("b_reply"),
        )
    )
    conn.execute(stmt, [_other_params(d, now) for d in decided])


def _other_params(d: Decision, now: datetime) -> dict[str, Any]:
    return {
        "b_id": d.outbox_id,
        "b_state": d.state.value,
        "b_next": d.next_attempt_at,
        "b_count": 1 if d.counted else 0,
        "b_now": now,
        "b_code": d.code,
        "b_reply": d.reply,
    }


def reset_bounces(conn: Connection, subscriber_ids: Sequence[int]) -> None:
    """Forget the consecutive failures of these subscribers (executemany: cheap per group)."""
    if not subscriber_ids:
        return
    delete_soft_events(conn, subscriber_ids)  # a delivery: the soft bounces start over too
    run_many(conn, _reset_statement(), [{"b_sub": i} for i in sorted(set(subscriber_ids))])


@functools.cache
def _reset_statement() -> Any:
    column = subscriber_bounces.c.subscriber_id
    return sa.delete(subscriber_bounces).where(column == sa.bindparam("b_sub"))


def bounce(conn: Connection, bumped: Sequence[int], now: datetime, limit: int) -> RecordReport:
    """Count permanent failures; at `limit` the subscriber is bounced, suppressed and their
    queue cancelled."""
    stmt = dialect_insert(conn, subscriber_bounces)
    stmt = stmt.on_conflict_do_update(
        index_elements=[subscriber_bounces.c.subscriber_id],
        set_={"failures": subscriber_bounces.c.failures + 1, "last_failure_at": now},
    )
    conn.execute(
        stmt, [{"subscriber_id": i, "failures": 1, "last_failure_at": now} for i in bumped]
    )
    over = sorted(
        conn.execute(
            sa.select(subscriber_bounces.c.subscriber_id).where(
                subscriber_bounces.c.subscriber_id.in_(sorted(set(bumped))),
                subscriber_bounces.c.failures >= limit,
            )
        ).scalars()
    )
    if not over:
        return RecordReport()
    suppress_subscribers(conn, over, now, f"{limit} permanent SMTP failures")
    move_subscribers(conn, over, Action.BOUNCE, now)  # by the transition table
    pending = sa.select(outbox.c.id).where(
        outbox.c.subscriber_id.in_(over), outbox.c.state.in_([s.value for s in PENDING])
    )
    ids = list(conn.execute(pending).scalars())
    if ids:
        conn.execute(finish_rows(ids, OutboxState.CANCELLED, now))
    return RecordReport(tuple(over), len(ids))
