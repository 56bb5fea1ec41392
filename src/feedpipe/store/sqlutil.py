"""SQL helpers every mixin shares: IN lists in chunks, INSERT … ON CONFLICT for the dialect."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

CHUNK = 500  # values per IN list: far below every backend's bind-parameter limit
T = TypeVar("T")


def chunked(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size` (for IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def delete_in(conn: Connection, column: sa.Column[Any], keys: Sequence[Any]) -> None:
    """DELETE rows whose `column` is in `keys`, chunk by chunk."""
    for chunk in chunked(keys):
        conn.execute(sa.delete(column.table).where(column.in_(chunk)))


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT for the connection's dialect (for ON CONFLICT clauses); the dialect module is
    imported on first use (PostgreSQL's costs a SQLite command tens of milliseconds)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT many rows in one Core executemany; nothing for no rows. (A hand-made driver path
    was tried for the cold sync: no whole-process difference measured, so Core it is.)"""
    if rows:
        conn.execute(sa.insert(table), list(rows))
