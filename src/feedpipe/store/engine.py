"""Engine creation (SQLite pragmas, PostgreSQL pool) and schema migration to head."""

from __future__ import annotations

import functools
import re
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from feedpipe.errors import StoreError

# Bump together with a new file in feedpipe/migrations/versions/.
HEAD_REVISION = "0018"
# How long a write waits for another process's lock, all retries included ([store]
# busy_timeout_seconds; settings.py has the same default).
DEFAULT_BUSY_TIMEOUT = 30.0
_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^/\s:@]*:)[^@\s/]+@")


def _sqlite_pragmas(busy_timeout: float, dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")  # before WAL: it may wait
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _pg_lock_timeout(busy_timeout: float, dbapi_conn: Any, _record: Any) -> None:
    """A lock wait ends in an error after `busy_timeout` (then wrap.py retries or reports)."""
    cursor = dbapi_conn.cursor()
    cursor.execute(f"SET lock_timeout = {int(busy_timeout * 1000)}")
    cursor.close()
    dbapi_conn.commit()  # a session setting: it outlives this first transaction


def mask(text: str) -> str:
    """Replace passwords embedded in URLs inside `text` by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def safe_url(url: str) -> str:
    """`url` with any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):  # not a database URL: mask by pattern
        return mask(url)


def first_line(exc: BaseException) -> str:
    """The driver's own message, first line only (no SQL, no link to SQLAlchemy's docs)."""
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def create_engine(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and `busy_timeout` (seconds),
    PostgreSQL the same as its lock_timeout (a lock wait ends in an error, then a retry)."""
    try:
        engine = sa.create_engine(url, future=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(
            f"[store] url is not usable ({first_line(exc)}): use sqlite:///PATH or "
            "postgresql+psycopg://HOST/DB"
        ) from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", functools.partial(_sqlite_pragmas, busy_timeout))
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", functools.partial(_pg_lock_timeout, busy_timeout))
    return engine


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("select version_num from alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Bring the schema to head with Alembic (skipped cheaply when already there)."""
    try:
        if current_revision(engine) == HEAD_REVISION:
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        location = resources.files("feedpipe") / "migrations"
        config.set_main_option("script_location", str(location))
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store at {engine.url!r}: {first_line(exc)}") from exc


def store_revision(url: str) -> str | None:
    """The schema revision of the store at `url`, read without migrating or creating anything
    (None: no schema yet); StoreError when the store cannot be reached."""
    parsed = make_url(url) if "://" in url else None
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or not Path(database).exists():
            return None
    engine = create_engine(url)
    try:
        return current_revision(engine)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot reach the store at {safe_url(url)}: {first_line(exc)}") from exc
    finally:
        engine.dispose()
