"""The store: migrations match the table definitions; times stay aware UTC; both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from feedpipe.store import Store
from feedpipe.store.engine import HEAD_REVISION, current_revision
from feedpipe.store.schema import metadata, posts


def _diff(store: Store) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        return [d for d in compare_metadata(context, metadata) if d[0] != "remove_table"]


def test_sqlite_migrations_match_the_table_definitions(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        assert current_revision(store.engine) == HEAD_REVISION
        assert _diff(store) == []


@pytest.mark.postgres
def test_postgres_migrations_match_the_table_definitions(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        assert current_revision(store.engine) == HEAD_REVISION
        assert _diff(store) == []


def _roundtrip(store: Store) -> datetime:
    when = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    values = {
        "guid": "g",
        "slug": "s",
        "url": "u",
        "title": "t",
        "summary": "",
        "content_html": "",
        "published_at": when,
        "draft": False,
        "content_hash": "h",
        "first_seen_at": when,
        "changed_at": when,
    }
    with store.engine.begin() as conn:
        conn.execute(sa.insert(posts).values(**values))
        back = conn.execute(sa.select(posts.c.published_at)).scalar_one()
    assert isinstance(back, datetime)
    return back


def test_times_come_back_as_aware_utc_on_sqlite(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        back = _roundtrip(store)
    assert back.tzinfo is UTC and back == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_times_come_back_as_aware_utc_on_postgres(pg_url: str) -> None:
    with Store.open(pg_url) as store:
        back = _roundtrip(store)
    assert back.utcoffset() == timedelta(0) and back == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)


def test_naive_datetimes_never_reach_the_store(sqlite_url: str) -> None:
    with (
        Store.open(sqlite_url) as store,
        store.engine.begin() as conn,
        pytest.raises(sa.exc.StatementError, match="naive"),
    ):
        conn.execute(sa.update(posts).values(first_seen_at=datetime(2026, 1, 1)))


def test_reopening_is_cheap_and_idempotent(sqlite_url: str) -> None:
    Store.open(sqlite_url).close()
    with Store.open(sqlite_url) as store:
        assert current_revision(store.engine) == HEAD_REVISION
