"""The one error boundary: SQLAlchemy and driver errors of public store methods → StoreError;
lock contention is retried with backoff until the store's busy timeout, then StoreLockedError."""

from __future__ import annotations

import functools
import inspect
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from feedpipe.errors import StoreError, StoreLockedError
from feedpipe.store.engine import DEFAULT_BUSY_TIMEOUT, first_line, mask

C = TypeVar("C", bound=type)
# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available (lock_timeout).
_PG_LOCK_STATES = frozenset({"40001", "40P01", "55P03"})
# primary result codes (extended codes share the low byte)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
FIRST_BACKOFF, MAX_BACKOFF = 0.02, 1.0  # seconds between retries: doubling, jittered, capped


def is_lock_error(exc: SQLAlchemyError) -> bool:
    """Whether `exc` says another transaction holds a lock (worth waiting for and retrying)."""
    cause = getattr(exc, "orig", None)
    if cause is None:
        return False
    if getattr(cause, "sqlstate", None) in _PG_LOCK_STATES:
        return True
    code = getattr(cause, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return True
    message = str(cause).lower()
    return "database is locked" in message or "database table is locked" in message


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry number `attempt` (0-based)."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2**attempt) * rng.uniform(0.5, 1.0))


_RNG = random.Random()


def store_error(exc: SQLAlchemyError, where: str, owner: object = None) -> StoreError:
    """One line: what failed, on which store (password masked), and the driver's message; a
    full disk also says that the transaction was rolled back (the store is as it was)."""
    engine = getattr(owner, "engine", None)
    on = f" on {engine.url!r}" if engine is not None else ""  # URL repr hides the password
    full = "; nothing was written: the store is as it was" if is_disk_full(exc) else ""
    return StoreError(mask(f"store {where} failed{on}: {first_line(exc)}{full}"))


def is_disk_full(exc: SQLAlchemyError) -> bool:
    """SQLite's SQLITE_FULL or PostgreSQL's disk_full (53100)."""
    cause = getattr(exc, "orig", None)
    code = getattr(cause, "sqlite_errorcode", None)
    return getattr(cause, "sqlstate", None) == "53100" or (
        isinstance(code, int) and code & 0xFF == _SQLITE_FULL
    )


def _wrapped(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        owner = args[0] if args else None
        budget = float(getattr(owner, "busy_timeout", DEFAULT_BUSY_TIMEOUT))
        started, attempt = time.monotonic(), 0
        while True:
            try:
                return func(*args, **kwargs)
            except SQLAlchemyError as exc:
                if not is_lock_error(exc):
                    raise store_error(exc, func.__name__, owner) from exc
                left = started + budget - time.monotonic()
                if left <= 0:
                    raise StoreLockedError(budget) from exc
            time.sleep(min(left, backoff(attempt, _RNG)))  # a method is one transaction: redo it
            attempt += 1

    call.__store_wrapped__ = True  # type: ignore[attr-defined]
    return call


def wrap_errors(cls: C) -> C:
    """Class decorator: every public method (inherited ones too) raises StoreError, `from` the
    SQLAlchemy error, instead of it. Domain errors a method raises on purpose pass through.

    A lock error (SQLite busy, PostgreSQL serialization failure, deadlock or lock timeout) reruns
    the method after a short, growing pause until `busy_timeout` seconds (the owner's attribute)
    have passed since the first try, then raises StoreLockedError. Every public method is one
    transaction, or safe to run again (reads, upserts), so a rerun never doubles a write."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if isinstance(attr, classmethod):
            setattr(cls, name, classmethod(_wrapped(attr.__func__)))
        elif inspect.isfunction(attr) and not getattr(attr, "__store_wrapped__", False):
            setattr(cls, name, _wrapped(attr))
    return cls
