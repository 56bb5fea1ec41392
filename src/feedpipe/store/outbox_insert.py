"""Outbox rows in bulk: a fill's editions, then its messages by the driver's fastest path.

SQLite: one prepared upsert run by the driver's executemany over plain tuples (no per-row
SQLAlchemy parameter processing). PostgreSQL: a binary COPY into the outbox; when a row is
present already, a COPY into a temporary table and one INSERT … SELECT … ON CONFLICT instead.
Both skip (subscriber, edition) pairs already present and queue a cancelled one again, and
count what they inserted or queued again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from json.encoder import encode_basestring as _quote  # json.dumps' strings (ensure_ascii=False)
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from feedpipe.model import MessageKind, NewMessage, OutboxFill, OutboxState
from feedpipe.store.outbox_tables import editions, outbox
from feedpipe.store.sqlutil import dialect_insert

# The columns a fill writes, in the order of every row tuple.
COLUMNS = (
    "subscriber_id", "edition_key", "kind", "recipient", "personalisation", "message_id",
    "state", "attempts", "next_attempt_at", "created_at", "updated_at", "since", "deadline",
)  # fmt: skip
# A cancelled row planned again (a late digest merged into one with the same posts) is queued
# again: it was never sent. Rows in any other state are kept as they are.
_REQUEUE = ("state", "attempts", "next_attempt_at", "updated_at", "since", "deadline")
BATCH = 10_000  # rows per executemany or COPY
STAGE = "outbox_fill_stage"  # PostgreSQL: the temporary table a COPY fills
# PostgreSQL binary COPY types of COLUMNS (varchar and text share their binary format).
_PG_TYPES = ["int4", "text", "text", "text", "text", "text", "text", "int4"] + ["timestamptz"] * 5
_QUEUED = OutboxState.QUEUED.value
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
_upserts: dict[tuple[Dialect, bool], str] = {}

Row = tuple[Any, ...]


def insert_editions(conn: Connection, fill: OutboxFill) -> int:
    """Store the fill's editions (one already stored is kept); returns how many were new."""
    if not fill.editions:
        return 0
    rows = [
        {
            "key": e.key,
            "created_at": e.created_at,
            "subject": e.subject,
            "post_ids": json.dumps(list(e.post_ids)),
            "template": e.template,
        }
        for e in fill.editions
    ]
    stmt = dialect_insert(conn, editions).on_conflict_do_nothing().returning(editions.c.key)
    return len(conn.execute(stmt, rows).all())


def insert_messages(conn: Connection, messages: Sequence[NewMessage], now: datetime) -> int:
    """Insert one row per message, skipping (subscriber, edition) pairs already present (a
    cancelled one is queued again); returns how many rows were inserted or queued again."""
    if not messages:
        return 0
    write = _copy_rows if conn.dialect.name == "postgresql" else _executemany
    stamp = _Stamper(conn.dialect)
    added = 0
    for start in range(0, len(messages), BATCH):
        added += write(conn, _rows(messages[start : start + BATCH], stamp(now), stamp))
    return added


def personalisation(message: NewMessage) -> str:
    """The JSON of what personalises a message: name, links, the first-digest flag and the
    given name; the text `json.dumps` gives for that dict (ensure_ascii=False), put together a
    fifth as fast."""
    r = message.recipient
    name = "null" if r.name is None else _quote(r.name)
    text = f'{{"name": {name}, "unsubscribe_url": {_quote(r.unsubscribe_url)}, '
    text += f'"preferences_url": {_quote(r.preferences_url)}'
    if r.first:
        text += ', "first": true'
    if r.given_name:
        text += f', "given_name": {_quote(r.given_name)}'
    return text + "}"


def _rows(messages: Sequence[NewMessage], at: Any, stamp: _Stamper) -> list[Row]:
    """The row tuples of COLUMNS (a fill's timestamps are few: each converted once)."""
    kinds = {k: k.value for k in MessageKind}
    done = stamp.done
    out = []
    for m in messages:
        r = m.recipient
        try:
            since, deadline = done[m.since], done[m.deadline]
        except KeyError:
            since, deadline = stamp(m.since), stamp(m.deadline)
        out.append((
            r.subscriber_id, m.edition_key, kinds[m.kind], r.email, personalisation(m),
            m.message_id, _QUEUED, 0, at, at, at, since, deadline,
        ))  # fmt: skip
    return out


class _Stamper:
    """The driver value of a timestamp column as Core binds it (SQLite: UTC text in the
    dialect's format, which SQL comparisons rely on), each distinct value converted once."""

    def __init__(self, dialect: Dialect) -> None:
        self.bind = outbox.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
        self.done: dict[datetime | None, Any] = {None: None}

    def __call__(self, value: datetime | None) -> Any:
        if value not in self.done:
            assert value is not None
            self.done[value] = value if self.bind is None else self.bind(value)
        return self.done[value]


def _upsert(conn: Connection, source: sa.Select[Any] | None = None) -> Any:
    """INSERT … ON CONFLICT of COLUMNS, from bound parameters or from `source`."""
    insert = dialect_insert(conn, outbox)
    if source is None:
        insert = insert.values({name: sa.bindparam(name) for name in COLUMNS})
    else:
        insert = insert.from_select(list(COLUMNS), source)
    cancelled: sa.ColumnClause[str] = sa.literal_column(f"'{OutboxState.CANCELLED.value}'")
    return insert.on_conflict_do_update(
        index_elements=[outbox.c.subscriber_id, outbox.c.edition_key],
        set_={name: insert.excluded[name] for name in _REQUEUE} | {"last_reply": sa.null()},
        where=outbox.c.state == cancelled,
    )


def _upsert_sql(conn: Connection, staged: bool) -> str:
    """The upsert as the driver's SQL, compiled once per dialect: with COLUMNS as positional
    parameters, or `staged` (PostgreSQL) from the staging table without parameters."""
    key = (conn.dialect, staged)
    sql = _upserts.get(key)
    if sql is None:
        stage = sa.table(STAGE, *(sa.column(name) for name in COLUMNS))
        compiled = _upsert(conn, sa.select(*stage.c) if staged else None).compile(
            dialect=conn.dialect
        )
        if tuple(compiled.positiontup or ()) != (() if staged else COLUMNS):
            raise AssertionError(f"upsert parameters out of order: {compiled.positiontup}")
        sql = _upserts[key] = compiled.string
    return sql


def _executemany(conn: Connection, rows: list[Row]) -> int:
    """SQLite: the prepared upsert over the rows; the driver's count of rows changed."""
    return int(conn.exec_driver_sql(_upsert_sql(conn, staged=False), rows).rowcount)


def _copy_rows(conn: Connection, rows: list[Row]) -> int:
    """PostgreSQL: binary COPY straight into the outbox (its cheapest path: no executor, rows
    written in bulk), inside a savepoint; when a (subscriber, edition) pair is present already
    (a unique violation: rare, e.g. a cancelled digest planned again), the savepoint is rolled
    back and the rows go through the staging table and the upsert instead."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute("SAVEPOINT outbox_copy")
        try:
            _copy(cursor, outbox.name, rows)
            added = len(rows)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT outbox_copy")
            added = _staged(conn, cursor, rows)
        cursor.execute("RELEASE SAVEPOINT outbox_copy")
    return added


def _staged(conn: Connection, cursor: Any, rows: list[Row]) -> int:
    """PostgreSQL: COPY into the transaction's staging table, then one upsert from it (which
    may meet each (subscriber, edition) pair once: a repeat is dropped, as the upsert would
    skip it)."""
    cursor.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} ON COMMIT DROP AS "
        f"SELECT {', '.join(COLUMNS)} FROM {outbox.name} WITH NO DATA"
    )
    seen: set[tuple[int, str]] = set()
    unique = []
    for row in rows:
        if (row[0], row[1]) not in seen:
            seen.add((row[0], row[1]))
            unique.append(row)
    _copy(cursor, STAGE, unique)
    added = int(conn.exec_driver_sql(_upsert_sql(conn, staged=True)).rowcount)
    cursor.execute(f"TRUNCATE {STAGE}")
    return added


def _copy(cursor: Any, table: str, rows: list[Row]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_PG_TYPES)
        for row in rows:
            copy.write_row(row)
