"""Who leads (sync, build, planning): a PostgreSQL advisory lock, or a lock file on SQLite."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from feedpipe.errors import FeedpipeError
from feedpipe.worker.logs import LOGGER, event
from feedpipe.worker.runs import LEADER_KEY, put_meta

LOCK_SUFFIX = ".worker.lock"  # beside the SQLite database file
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


class WorkerRefused(FeedpipeError):
    """Another worker already runs on this store and this one must not start."""


def worker_identity() -> str:
    """host:pid of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership(Protocol):
    """Decides whether this process runs the leader jobs (sync, build, plan)."""

    identity: str

    def poll(self, now: datetime) -> bool:
        """Try to become (or check that we still are) the leader; return whether we lead."""

    @property
    def is_leader(self) -> bool: ...

    def close(self) -> None: ...


class SoleLeader:
    """Always the leader: one process on a store nobody else can reach (in-memory, tests)."""

    def __init__(self, identity: str | None = None) -> None:
        self.identity = identity or worker_identity()

    def poll(self, now: datetime) -> bool:
        return True

    @property
    def is_leader(self) -> bool:
        return True

    def close(self) -> None:
        pass


def lock_path(engine: Engine) -> Path | None:
    """The lock file beside a SQLite database file (None for in-memory databases)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return Path(database + LOCK_SUFFIX)


class FileLeader:
    """SQLite: one worker per database, enforced with an exclusive flock on a lock file."""

    def __init__(self, engine: Engine, path: Path, identity: str | None = None) -> None:
        self.identity = identity or worker_identity()
        self.path = path
        self.engine = engine
        self._file: IO[str] | None = None

    def acquire(self, now: datetime) -> None:
        """Take the lock or raise WorkerRefused naming the worker that holds it."""
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise WorkerRefused(
                f"another feedpipe worker ({holder}) is already running on "
                f"{str(self.path).removesuffix(LOCK_SUFFIX)} — SQLite allows one worker: "
                "stop it first, or use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(self.identity + "\n")
        handle.flush()
        self._file = handle
        put_meta(self.engine, LEADER_KEY, _leader_json(self.identity, now))

    def poll(self, now: datetime) -> bool:
        return self._file is not None

    @property
    def is_leader(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def file_lock_holder(path: Path) -> str | None:
    """Who holds the SQLite worker lock, or None when no worker runs."""
    if not path.exists():
        return None
    with path.open("r", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "unknown"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


class PgLeader:
    """PostgreSQL: the leader holds a session advisory lock on its own connection; when the
    leader dies its connection closes, the lock is released and another worker takes it."""

    def __init__(self, engine: Engine, identity: str | None = None) -> None:
        self.identity = identity or worker_identity()
        self.store_engine = engine
        url = engine.url.update_query_dict({"application_name": f"feedpipe {self.identity}"})
        self.engine = sa.create_engine(url, poolclass=NullPool)
        self._conn: Connection | None = None
        self._leader = False
        self.log = logging.getLogger(LOGGER)

    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll(self, now: datetime) -> bool:
        try:
            self._poll(now)
        except SQLAlchemyError as exc:
            if self._leader:
                event(self.log, "leader.lost", logging.WARNING, worker=self.identity, error=exc)
            self._drop()
        return self._leader

    def _poll(self, now: datetime) -> None:
        if self._conn is None:
            self._conn = self.engine.connect()
            for statement in _KEEPALIVES:
                self._conn.exec_driver_sql(statement)
            self._conn.commit()
        if self._leader:
            self._conn.execute(sa.text("SELECT 1")).scalar()  # still connected = still the leader
            self._conn.commit()
            return
        got = bool(self._conn.execute(_TRY_LOCK).scalar())
        self._conn.commit()  # session lock: survives the commit, frees the snapshot
        if got:
            self._leader = True
            put_meta(self.store_engine, LEADER_KEY, _leader_json(self.identity, now))
            event(self.log, "leader.elected", worker=self.identity)

    def _drop(self) -> None:
        self._leader = False
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._drop()  # closing the session releases the lock
        self.engine.dispose()


def pg_lock_holder(engine: Engine) -> str | None:
    """The application name of the session holding the leader lock, or None."""
    with engine.connect() as conn:
        row = conn.execute(_HOLDER).first()
    return None if row is None else str(row[0] or f"pid {row[2]}")


def _leader_json(identity: str, now: datetime) -> str:
    return json.dumps({"worker": identity, "since": now.isoformat()})
