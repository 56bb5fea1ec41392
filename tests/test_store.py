"""The store: migrations match the table definitions; times stay aware UTC; both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from feedpipe.errors import StoreError
from feedpipe.store import SqlStore
from feedpipe.store.engine import HEAD_REVISION, create_engine, current_revision
from feedpipe.store.schema import metadata, posts
from feedpipe.store.sqlutil import chunked


def _diff(store: SqlStore) -> list[object]:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        return [d for d in compare_metadata(context, metadata) if d[0] != "remove_table"]


def test_sqlite_migrations_match_the_table_definitions(sqlite_url: str) -> None:
    with SqlStore.open(sqlite_url) as store:
        assert current_revision(store.engine) == HEAD_REVISION
        assert _diff(store) == []


@pytest.mark.postgres
def test_postgres_migrations_match_the_table_definitions(pg_url: str) -> None:
    with SqlStore.open(pg_url) as store:
        assert current_revision(store.engine) == HEAD_REVISION
        assert _diff(store) == []


def _roundtrip(store: SqlStore) -> datetime:
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
    with SqlStore.open(sqlite_url) as store:
        back = _roundtrip(store)
    assert back.tzinfo is UTC and back == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)


@pytest.mark.postgres
def test_times_come_back_as_aware_utc_on_postgres(pg_url: str) -> None:
    with SqlStore.open(pg_url) as store:
        back = _roundtrip(store)
    assert back.utcoffset() == timedelta(0) and back == datetime(2026, 3, 28, 21, 0, tzinfo=UTC)


def test_naive_datetimes_never_reach_the_store(sqlite_url: str) -> None:
    with (
        SqlStore.open(sqlite_url) as store,
        store.engine.begin() as conn,
        pytest.raises(sa.exc.StatementError, match="naive"),
    ):
        conn.execute(sa.update(posts).values(first_seen_at=datetime(2026, 1, 1)))


def test_reopening_is_cheap_and_idempotent(sqlite_url: str) -> None:
    SqlStore.open(sqlite_url).close()
    with SqlStore.open(sqlite_url) as store:
        assert current_revision(store.engine) == HEAD_REVISION


def test_every_public_store_method_raises_store_error_from_the_driver_error(
    tmp_path: Path,
) -> None:
    public = [n for n in dir(SqlStore) if not n.startswith("_") and callable(getattr(SqlStore, n))]
    assert all(getattr(getattr(SqlStore, n), "__store_wrapped__", False) for n in public)
    with SqlStore.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE dirty_feeds"))
        with pytest.raises(StoreError, match=r"dirty_feed_keys.*no such table") as caught:
            store.dirty_feed_keys()
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
    assert "\n" not in str(caught.value)


def test_a_store_error_is_one_line_with_the_password_masked() -> None:
    store = SqlStore(create_engine("postgresql+psycopg://u:hunter2@127.0.0.1:1/x"))
    with store, pytest.raises(StoreError) as caught:
        store.get_meta("k")
    text = str(caught.value)
    assert "\n" not in text and "hunter2" not in text and "u:***@127.0.0.1:1/x" in text


def test_meta_has_one_upsert_and_setdefault_keeps_the_first_value(tmp_path: Path) -> None:
    with SqlStore.open(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.set_meta("a", "1")
        store.set_meta("a", "2")
        assert store.meta_setdefault("a", "3") == "2"
        assert store.meta_setdefault("b", "4") == "4"
        assert store.meta_with_prefix("a") == {"a": "2"}


def test_in_lists_are_chunked() -> None:
    assert [list(c) for c in chunked(list(range(7)), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
