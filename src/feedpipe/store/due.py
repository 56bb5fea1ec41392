"""Who a fill reads: the id ranges of subscribers due by its time, and next_due_at kept up."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpipe.model import SubscriberStatus
from feedpipe.store.subscribers import id_among, subscribers

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
