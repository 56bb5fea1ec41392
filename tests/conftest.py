"""Shared test fixtures: the shared corpus, a fixed clock, and the one store fixture family.

`store_url` is every store a test can run on (SQLite, and PostgreSQL when present);
`store` opens it; `sqlite_url` / `sqlite_store` are for tests that are about SQLite or
run the CLI on its default store; `pg_url` for tests that are about PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedpipe.clock import FixedClock
from feedpipe.store import SqlStore
from tests.helpers import sqlite_file_url

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
PG_ADMIN_URL = os.environ.get("FEEDPIPE_TEST_PG", "postgresql+psycopg://127.0.0.1:5432/test")


KEEP_ENV = {"FEEDPIPE_REQUIRE_POSTGRES", "FEEDPIPE_TEST_PG"}


@pytest.fixture(autouse=True)
def _no_feedpipe_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up an operator's FEEDPIPE_* settings (config path, store, secrets)."""
    for name in list(os.environ):
        if name.startswith("FEEDPIPE_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """../shared/corpus beside the repository; its absence is an error, not a skip."""
    if not CORPUS.is_dir():
        pytest.fail(f"test corpus not found at {CORPUS}: clone the repo beside ../shared")
    return CORPUS


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))


def _pg_available() -> str | None:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure means: no usable PostgreSQL here
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {type(exc).__name__}: {exc}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test; skips (or fails in CI) without PostgreSQL."""
    reason = _pg_available()
    if reason:
        if os.environ.get("FEEDPIPE_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    import sqlalchemy as sa

    schema = "t_" + uuid.uuid4().hex[:12]
    engine = sa.create_engine(PG_ADMIN_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The test's SQLite store, tmp_path/fp.db: where write_config and worker_config point."""
    return sqlite_file_url(tmp_path)


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[SqlStore]:
    """The test's SQLite store, opened (migrated) and closed at teardown."""
    with SqlStore.open(sqlite_url) as opened:
        yield opened


ENGINES = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh store on each engine: `sqlite_url`, then `pg_url` (skips or fails as it does)."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    assert isinstance(url, str)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    """`store_url`, opened (migrated) and closed at teardown."""
    with SqlStore.open(store_url) as opened:
        yield opened
