"""`sqlutil.run_many` (a statement compiled once, the driver's executemany) does what Core's
executemany of the same statement does, on both engines."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.store.sqlutil import bulk_insert, run_many
from feedpipe.store.types import UTCDateTime

meta = sa.MetaData()
rows_table = sa.Table(
    "run_many_rows",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Column("code", sa.Integer),
    sa.Column("reply", sa.Text),
    sa.Column("seen_at", UTCDateTime),
    sa.Column("touched_at", UTCDateTime),
    sa.Column("kind", sa.String(10), nullable=False, default="plain"),  # a Python-side default
)


@functools.cache
def update_statement() -> Any:
    """Fixed values, a SQL expression, a bind used twice, a typed bind and a WHERE on an OR."""
    at = sa.bindparam("b_at", type_=UTCDateTime)
    return (
        sa.update(rows_table)
        .where(
            rows_table.c.id == sa.bindparam("b_id"),
            sa.or_(rows_table.c.state == "new", rows_table.c.state == "retry"),
        )
        .values(
            state="done",
            hits=rows_table.c.hits + 1,
            code=sa.bindparam("b_code"),
            reply=sa.bindparam("b_reply"),
            seen_at=at,
            touched_at=at,
        )
    )


START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROW = st.fixed_dictionaries(
    {
        "b_id": st.integers(1, 12),
        "b_code": st.none() | st.integers(200, 599),
        "b_reply": st.none() | st.text(max_size=30).filter(lambda s: "\x00" not in s),
        "b_at": st.integers(0, 10**6).map(lambda s: START + timedelta(seconds=s)),
    }
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Any:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    created = sa.create_engine(url)
    meta.create_all(created)
    yield created
    created.dispose()


def table_after(engine: Any, rows: list[dict[str, Any]], fast: bool) -> list[tuple[Any, ...]]:
    seed = [{"id": i, "state": ("new", "retry", "done")[i % 3], "hits": i} for i in range(1, 13)]
    with engine.begin() as conn:
        conn.execute(rows_table.delete())
        conn.execute(rows_table.insert(), seed)
        if fast:
            run_many(conn, update_statement(), rows)
        elif rows:
            conn.execute(update_statement(), rows)
        return [tuple(r) for r in conn.execute(rows_table.select().order_by(rows_table.c.id))]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(ROW, max_size=8))
def test_run_many_is_cores_executemany(engine: Any, rows: list[dict[str, Any]]) -> None:
    assert table_after(engine, rows, fast=True) == table_after(engine, rows, fast=False)


def test_aware_times_come_back_aware_and_equal(engine: Any) -> None:
    at = datetime(2026, 11, 21, 13, 30, 15, 123456, tzinfo=UTC)
    after = table_after(engine, [{"b_id": 1, "b_code": 250, "b_reply": "ok", "b_at": at}], True)
    assert after[0][1:] == ("done", 2, 250, "ok", at, at, "plain")


def test_a_bulk_insert_applies_python_side_defaults_as_core_does(engine: Any) -> None:
    row = {"state": "new", "hits": 0}
    with engine.begin() as conn:
        conn.execute(rows_table.delete())
        bulk_insert(conn, rows_table, [{"id": 1, **row}, {"id": 2, **row}])
        conn.execute(rows_table.insert(), [{"id": 3, **row}])
        kinds = conn.execute(sa.select(rows_table.c.kind).order_by(rows_table.c.id)).scalars()
        assert list(kinds) == ["plain", "plain", "plain"]
