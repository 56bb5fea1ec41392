"""Who leads (sync, build, planning): a PostgreSQL advisory lock, or a lock file on SQLite."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from feedpipe.errors import FeedpipeError, StoreError
from feedpipe.store import LeaderLock, LeasesStore
from feedpipe.worker.logs import LOGGER, event

LOCK_SUFFIX = ".worker.lock"  # beside the SQLite database file


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


def lock_path(store: LeasesStore) -> Path | None:
    """The lock file beside a SQLite database file (None for in-memory databases)."""
    database = store.database_path()
    return None if database is None else Path(str(database) + LOCK_SUFFIX)


class FileLeader:
    """SQLite: one worker per database, enforced with an exclusive flock on a lock file."""

    def __init__(self, store: LeasesStore, path: Path, identity: str | None = None) -> None:
        self.identity = identity or worker_identity()
        self.path = path
        self.store = store
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
        self.store.set_leader(self.identity, now)

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
    """PostgreSQL: the leader holds the store's leader lock (a session advisory lock on a
    connection of its own); when the leader dies the lock is released and another takes it."""

    def __init__(self, store: LeasesStore, lock: LeaderLock, identity: str | None = None) -> None:
        self.identity = identity or worker_identity()
        self.store = store
        self.lock = lock
        self._leader = False
        self.log = logging.getLogger(LOGGER)

    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll(self, now: datetime) -> bool:
        try:
            self._poll(now)
        except StoreError as exc:
            if self._leader:
                event(self.log, "leader.lost", logging.WARNING, worker=self.identity, error=exc)
            self._drop()
        return self._leader

    def _poll(self, now: datetime) -> None:
        if self._leader:
            self.lock.ping()  # still connected = still the leader
            return
        if self.lock.try_acquire():
            self._leader = True
            self.store.set_leader(self.identity, now)
            event(self.log, "leader.elected", worker=self.identity)

    def _drop(self) -> None:
        self._leader = False
        self.lock.release()

    def close(self) -> None:
        self._drop()
        self.lock.close()
