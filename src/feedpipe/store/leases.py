"""Store mixin for worker leadership: the PostgreSQL advisory lock, the leader record, the
SQLite database file a lock file sits beside."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from feedpipe.store.meta import MetaMixin
from feedpipe.store.wrap import wrap_errors

LEADER_KEY = "worker.leader"
# One lock per database and schema, so test schemas in one database do not collide.
_LOCK_KEY = (
    "hashtextextended('feedpipe.leader:' || current_database() || '.' || current_schema(), 0)"
)
_TRY_LOCK = sa.text(f"SELECT pg_try_advisory_lock({_LOCK_KEY})")
_HOLDER = sa.text(
    "SELECT a.application_name, a.client_addr::text, a.pid FROM pg_locks l "
    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
    f"AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = {_LOCK_KEY}"
)
# A dead leader host's connection is closed by the server after about 5 + 3 × 2 s of silence.
_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


@wrap_errors
class PgLeaderLock:
    """A session advisory lock on a connection of its own (named after the worker): when the
    holder dies its connection closes and the lock is free for another worker."""

    def __init__(self, engine: Engine, identity: str) -> None:
        url = engine.url.update_query_dict({"application_name": f"feedpipe {identity}"})
        self.engine = sa.create_engine(url, poolclass=NullPool)
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free (connecting first when needed); whether we got it."""
        conn = self._connection()
        got = bool(conn.execute(_TRY_LOCK).scalar())
        conn.commit()  # session lock: survives the commit, frees the snapshot
        return got

    def ping(self) -> None:
        """Raise StoreError unless the lock's connection is still alive (alive = still held)."""
        conn = self._connection()
        conn.execute(sa.text("SELECT 1")).scalar()
        conn.commit()

    def release(self) -> None:
        """Close the connection, which releases the lock; the next call reconnects."""
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self.release()
        self.engine.dispose()

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self.engine.connect()
            for statement in _KEEPALIVES:
                conn.exec_driver_sql(statement)
            conn.commit()
            self._conn = conn
        return self._conn


class LeasesMixin(MetaMixin):
    """What worker leadership needs from the store."""

    engine: Engine

    def leader_lock(self, identity: str) -> PgLeaderLock | None:
        """A leader lock for `identity` (PostgreSQL); None where the store has none (SQLite)."""
        if self.engine.dialect.name != "postgresql":
            return None
        return PgLeaderLock(self.engine, identity)

    def leader_lock_holder(self) -> str | None:
        """The application name of the session holding the leader lock, or None."""
        if self.engine.dialect.name != "postgresql":
            return None
        with self.engine.connect() as conn:
            row = conn.execute(_HOLDER).first()
        return None if row is None else str(row[0] or f"pid {row[2]}")

    def database_path(self) -> Path | None:
        """The SQLite database file (None for PostgreSQL and in-memory databases)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return Path(database)

    def set_leader(self, identity: str, since: datetime) -> None:
        """Record who became the leader and when."""
        self.set_meta(LEADER_KEY, json.dumps({"worker": identity, "since": since.isoformat()}))

    def last_leader(self) -> dict[str, Any]:
        """The last leader recorded ({} when none was)."""
        raw = self.get_meta(LEADER_KEY)
        found: dict[str, Any] = json.loads(raw) if raw else {}
        return found
