"""Late digests: queued past their deadline, cancelled with the watermark rolled back."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpipe.model import PENDING, MessageKind, OutboxState
from feedpipe.store.outbox_tables import outbox
from feedpipe.store.sqlutil import chunked
from feedpipe.store.subscribers import subscribers

LATE_REPLY = "late: merged into the next digest"
# A later digest of the subscriber that went (or is going) out: rolling back would repeat it.
_DELIVERED = (OutboxState.SENT.value, OutboxState.SENDING.value)


def expire_late(conn: Connection, now: datetime) -> int:
    """Cancel digests still waiting at their deadline, with every later waiting digest of the
    same subscriber, and move the subscriber's watermark back to the first one's `since`: the
    posts go in their next digest. A subscriber with a later digest sent or in flight keeps
    their late one (sending late beats losing it or sending a post twice). Returns rows cancelled.
    """
    pending = [s.value for s in PENDING]
    late = sa.select(outbox.c.subscriber_id, sa.func.min(outbox.c.id)).where(
        outbox.c.kind == MessageKind.DIGEST.value,
        outbox.c.state.in_(pending),
        outbox.c.deadline < now,
    )
    first = {r[0]: r[1] for r in conn.execute(late.group_by(outbox.c.subscriber_id))}
    cancelled = 0
    for chunk in chunked(sorted(first)):
        cancelled += _expire(conn, {s: first[s] for s in chunk}, now)
    return cancelled


def _expire(conn: Connection, first: dict[int, int], now: datetime) -> int:
    cols = (outbox.c.id, outbox.c.subscriber_id, outbox.c.state, outbox.c.since)
    stmt = sa.select(*cols).where(
        outbox.c.subscriber_id.in_(list(first)),
        outbox.c.kind == MessageKind.DIGEST.value,
        outbox.c.id >= min(first.values()),
    )
    if conn.dialect.name == "postgresql":  # claimers skip these rows until we commit
        stmt = stmt.with_for_update(of=outbox)
    rows: dict[int, list[tuple[int, str, datetime | None]]] = defaultdict(list)
    for row_id, sub_id, state, since in conn.execute(stmt):
        if row_id >= first[sub_id]:
            rows[sub_id].append((row_id, state, since))
    cancel: list[int] = []
    for sub_id, found in rows.items():
        if any(state in _DELIVERED for _, state, _ in found):
            continue
        ids = [row_id for row_id, state, _ in found if state in [s.value for s in PENDING]]
        marks = [since for _, _, since in found if since is not None]
        cancel += ids
        if marks:
            _roll_back(conn, sub_id, min(marks))
    for chunk in chunked(cancel):
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(chunk))
            .values(
                state=OutboxState.CANCELLED.value,
                next_attempt_at=None,
                last_reply=LATE_REPLY,
                updated_at=now,
            )
        )
    return len(cancel)


def _roll_back(conn: Connection, subscriber_id: int, since: datetime) -> None:
    c = subscribers.c
    conn.execute(
        sa.update(subscribers)
        .where(c.id == subscriber_id, c.watermark > since)
        .values(watermark=since)
    )
