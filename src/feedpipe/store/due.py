"""A fill's subscribers: the id ranges of those due by its time; their cursors and next_due_at."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpipe.model import Advance, SubscriberStatus
from feedpipe.store.subscribers import subscribers

STREAM = 10_000  # ids fetched at a time


def due_ranges(conn: Connection, now: datetime, size: int) -> list[tuple[int, int]]:
    """(after, until] id ranges holding `size` active subscribers due by `now` each (the
    last fewer), by id: those whose next_due_at is at most `now` or not known, read through
    the (status, next_due_at) index, so subscribers not due are not read at all."""
    c, active = subscribers.c, SubscriberStatus.ACTIVE.value
    unknown = sa.select(c.id).where(c.status == active, c.next_due_at.is_(None))
    known = sa.select(c.id).where(c.status == active, c.next_due_at <= now)
    stmt = sa.union_all(unknown, known).order_by("id")
    ids = conn.execute(stmt.execution_options(stream_results=True, yield_per=STREAM)).scalars()
    return list(_ranges(ids, size))


def _ranges(ids: Iterator[int], size: int) -> Iterator[tuple[int, int]]:
    first = last = None
    count = 0
    for sub_id in ids:
        if first is None:
            first = sub_id
        last, count = sub_id, count + 1
        if count == size:
            yield first - 1, last
            first, count = None, 0
    if first is not None and last is not None:
        yield first - 1, last


def set_next_due(
    conn: Connection, next_due: Mapping[int, datetime], skip: Collection[int] = ()
) -> None:
    """Store the next_due_at of subscribers that did not move (those in `skip` moved: their
    UPDATE set it with their slot cursor); one UPDATE per distinct value."""
    by_value: dict[datetime, list[int]] = defaultdict(list)
    for sub_id, due in next_due.items():
        if sub_id not in skip:
            by_value[due].append(sub_id)
    for due, ids in by_value.items():
        among = id_among(conn, sorted(ids))
        conn.execute(sa.update(subscribers).where(among).values(next_due_at=due))


def advance_subscribers(
    conn: Connection,
    advances: Mapping[int, Advance],
    next_due: Mapping[int, datetime] | None = None,
) -> None:
    """Apply a plan's moves: slot cursors (last_digest_at, with `next_due` the next_due_at
    that goes with it) and watermarks, never back; one UPDATE per distinct move (a fill's
    subscribers mostly share theirs) and list of ids."""
    moves: dict[tuple[datetime, datetime | None, datetime | None], list[int]] = defaultdict(list)
    due = (next_due or {}).get
    for sub_id, advance in advances.items():
        moves[advance.cursor, advance.watermark, due(sub_id)].append(sub_id)
    c = subscribers.c
    for (cursor, mark, next_at), ids in moves.items():
        later = sa.or_(c.last_digest_at.is_(None), c.last_digest_at < cursor)
        values: dict[str, Any] = {
            "last_digest_at": sa.case((later, cursor), else_=c.last_digest_at)
        }
        if next_at is not None:
            values["next_due_at"] = sa.case((later, next_at), else_=c.next_due_at)
        if mark is not None:
            values["watermark"] = sa.case((c.watermark < mark, mark), else_=c.watermark)
            later = sa.or_(later, c.watermark < mark)
        among = id_among(conn, sorted(ids))
        conn.execute(sa.update(subscribers).where(among, later).values(values))


def id_among(conn: Connection, ids: Sequence[int]) -> sa.ColumnElement[bool]:
    """`subscribers.id` among `ids` as one parameter (no IN list of thousands to compile and
    bind): an array on PostgreSQL, a JSON list read by json_each on SQLite."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return subscribers.c.id == sa.any_(sa.bindparam("ids", list(ids), ARRAY(sa.Integer)))
    listed = sa.func.json_each(json.dumps(list(ids))).table_valued("value")
    return subscribers.c.id.in_(sa.select(listed.c.value))
