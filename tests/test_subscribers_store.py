"""Subscriber store mixin on SQLite and PostgreSQL: add, import, list, status, watermarks, posts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from feedpipe.errors import DuplicateSubscriberError, InvalidTransitionError
from feedpipe.model import (
    Action,
    Contact,
    Frequency,
    NewSubscriber,
    Preferences,
    Schedule,
    Subscriber,
    SubscriberStatus,
)
from feedpipe.store import SqlStore
from feedpipe.store.engine import HEAD_REVISION, current_revision
from feedpipe.store.schema import post_terms, posts, terms
from feedpipe.store.subscribers import move_subscribers

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def new(
    email: str,
    categories: tuple[str, ...] = (),
    status: SubscriberStatus = SubscriberStatus.ACTIVE,
    frequency: Frequency = Frequency.DAILY,
    created: datetime = T0,
) -> NewSubscriber:
    return NewSubscriber(
        email=email,
        name="Ada",
        status=status,
        categories=categories,
        schedule=Schedule(frequency, 2, time(7, 30), "Europe/Berlin"),
        created_at=created,
        confirmed_at=created if status is SubscriberStatus.ACTIVE else None,
    )


def test_migrates_to_head(store: SqlStore) -> None:
    assert current_revision(store.engine) == HEAD_REVISION


def test_add_and_get_round_trip(store: SqlStore) -> None:
    added = store.add_subscriber(new("Ada@example.com", ("rust", "go")))
    assert added.email == "Ada@example.com" and added.name == "Ada"
    assert added.categories == ("rust", "go")
    assert added.schedule == Schedule(Frequency.DAILY, 2, time(7, 30), "Europe/Berlin")
    assert added.watermark == T0 == added.created_at  # never the back catalogue
    assert added.watermark.tzinfo is not None and added.last_digest_at is None
    assert store.subscriber_by_email("ADA@EXAMPLE.COM") == added
    assert store.subscriber_by_id(added.id) == added
    assert store.subscriber_by_email("nobody@example.com") is None


def test_duplicate_is_case_insensitive(store: SqlStore) -> None:
    store.add_subscriber(new("ada@example.com"))
    with pytest.raises(DuplicateSubscriberError, match="already subscribed"):
        store.add_subscriber(new("ADA@Example.com"))


def test_import_reports_duplicates_and_keeps_the_rest(store: SqlStore) -> None:
    store.add_subscriber(new("taken@example.com"))
    rows = [new(f"u{i}@example.com") for i in range(1200)]
    rows[10] = new("TAKEN@example.com")
    rows[20] = new("U5@example.com")
    assert store.import_subscribers(rows) == [10, 20]
    assert len(store.subscribers()) == 1 + 1198


def test_list_filters(store: SqlStore) -> None:
    store.add_subscriber(new("a@example.com", ("rust",)))
    store.add_subscriber(new("b@example.com", ("go",), frequency=Frequency.WEEKLY))
    store.add_subscriber(new("c@example.com", status=SubscriberStatus.PENDING))

    def emails(subs: list[Subscriber]) -> list[str]:
        return [s.email[0] for s in subs]

    assert emails(store.subscribers()) == ["a", "b", "c"]
    assert emails(store.subscribers(status=SubscriberStatus.ACTIVE)) == ["a", "b"]
    assert emails(store.subscribers(category="rust")) == ["a", "c"]  # c gets everything
    assert emails(store.subscribers(frequency=Frequency.WEEKLY)) == ["b"]


def test_status_changes_stamp_times(store: SqlStore) -> None:
    sub = store.add_subscriber(new("a@example.com", status=SubscriberStatus.PENDING))
    later = T0 + timedelta(hours=1)
    store.move_subscriber(sub.id, Action.CONFIRM, later)
    store.move_subscriber(sub.id, Action.CONFIRM, later + timedelta(hours=1))
    active = store.subscriber_by_id(sub.id)
    assert active is not None and active.confirmed_at == later
    store.move_subscriber(sub.id, Action.UNSUBSCRIBE, later)
    gone = store.subscriber_by_id(sub.id)
    assert gone is not None and gone.status is SubscriberStatus.UNSUBSCRIBED
    assert gone.unsubscribed_at == later


def test_moves_follow_the_transition_table(store: SqlStore) -> None:
    sub = store.add_subscriber(new("a@example.com", status=SubscriberStatus.PENDING))
    with pytest.raises(InvalidTransitionError):
        store.move_subscriber(sub.id, Action.RESUME, T0)  # a pending one cannot skip confirming
    assert store.move_subscriber(sub.id, Action.COMPLAIN, T0) == (
        SubscriberStatus.PENDING,
        SubscriberStatus.COMPLAINED,
    )
    with store.engine.begin() as conn:  # the outbox's bounce counting: a complaint stays
        assert move_subscribers(conn, [sub.id], Action.BOUNCE, T0) == 0
    found = store.subscriber_by_id(sub.id)
    assert found is not None and found.status is SubscriberStatus.COMPLAINED
    assert store.move_subscriber(sub.id + 1000, Action.CONFIRM, T0) is None


def test_remove(store: SqlStore) -> None:
    sub = store.add_subscriber(new("a@example.com"))
    assert store.remove_subscriber(sub.id) is True
    assert store.remove_subscriber(sub.id) is False
    assert store.subscribers() == []


def test_watermarks_advance_in_batches_and_never_back(store: SqlStore) -> None:
    store.import_subscribers([new(f"u{i}@example.com") for i in range(1100)])
    ids = [s.id for s in store.subscribers()]
    later = T0 + timedelta(days=1)
    store.advance_watermarks(dict.fromkeys(ids, later))
    store.advance_watermarks({ids[0]: T0 + timedelta(hours=1)})  # older: ignored
    subs = store.subscribers()
    assert {s.watermark for s in subs} == {later}
    assert {s.last_digest_at for s in subs} == {later}


def test_subscribers_by_ids(store: SqlStore) -> None:
    store.import_subscribers([new(f"u{i}@example.com") for i in range(700)])
    ids = [s.id for s in store.subscribers()]
    found = store.subscribers_by_ids(ids[::2])
    assert sorted(found) == ids[::2]


def _insert_post(store: SqlStore, slug: str, seen: datetime, cats: list[str], **kw: object) -> int:
    values = {
        "guid": f"urn:{slug}",
        "slug": slug,
        "url": f"https://blog.example.com/{slug}/",
        "title": slug,
        "summary": "",
        "content_html": "",
        "published_at": seen,
        "draft": False,
        "content_hash": "",
        "first_seen_at": seen,
        "changed_at": seen,
        **kw,
    }
    with store.engine.begin() as conn:
        post_id = conn.execute(sa.insert(posts).values(values)).inserted_primary_key[0]  # type: ignore[index]
        for position, key in enumerate(cats):
            term_id = conn.execute(
                sa.select(terms.c.id).where(terms.c.kind == "category", terms.c.key == key)
            ).scalar()
            if term_id is None:
                term_id = conn.execute(
                    sa.insert(terms).values(kind="category", key=key, slug=key, name=key.title())
                ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(
                sa.insert(post_terms).values(post_id=post_id, term_id=term_id, position=position)
            )
    return int(post_id)


def test_digest_posts_window_and_category_order(store: SqlStore) -> None:
    old = _insert_post(store, "old", T0 - timedelta(days=2), ["rust"])
    new_id = _insert_post(store, "new", T0 + timedelta(hours=1), ["rust", "go"])
    later = _insert_post(store, "later", T0 + timedelta(days=3), [])
    scheduled = _insert_post(
        store, "sched", T0 - timedelta(days=1), ["go"], published_at=T0 + timedelta(days=1)
    )
    gone = _insert_post(
        store, "gone", T0 + timedelta(hours=2), [], removed_at=T0 + timedelta(hours=3), draft=True
    )
    found = {p.id: p for p in store.digest_posts(T0, T0 + timedelta(days=2))}
    assert set(found) == {new_id, scheduled, gone}
    assert old not in found and later not in found
    assert found[new_id].categories == ("rust", "go")
    assert found[new_id].first_seen_at == T0 + timedelta(hours=1)
    assert found[gone].removed and found[gone].draft
    assert found[scheduled].available_at == T0 + timedelta(days=1)


def test_meta_setdefault_is_stable(store: SqlStore) -> None:
    first = store.meta_setdefault("token_secret")
    assert len(first) >= 32
    assert store.meta_setdefault("token_secret") == first
    assert store.get_meta("token_secret") == first


def test_bulk_import_of_100k_keeps_every_row(sqlite_url: str) -> None:
    """One transaction of 100k rows (its speed is measured in benchmarks/, not here)."""
    with SqlStore.open(sqlite_url) as big:
        rows = [new(f"user{i}@example.com", ("rust",)) for i in range(100_000)]
        assert big.import_subscribers(rows) == []
        assert len(big.subscribers(status=SubscriberStatus.ACTIVE)) == 100_000


def test_subscriber_contacts_small_and_large_sets(store: SqlStore) -> None:
    store.import_subscribers([new(f"u{i}@example.com") for i in range(10_500)])
    ids = [s.id for s in store.subscribers()]
    small = store.subscriber_contacts(ids[:3])
    assert small == {i: Contact(f"u{n}@example.com", "Ada") for n, i in enumerate(ids[:3])}
    large = store.subscriber_contacts(ids[1:])  # one scan
    assert len(large) == len(ids) - 1 and ids[0] not in large


def test_a_removed_subscribers_id_is_never_given_to_a_new_one(store: SqlStore) -> None:
    first = store.add_subscriber(new("gone@example.com"))
    assert store.remove_subscriber(first.id)
    second = store.add_subscriber(new("next@example.com"))
    assert second.id > first.id


def test_schedule_counts_group_what_each_subscriber_says(store: SqlStore) -> None:
    """`feedpipe status` counts schedules from one grouped read: for every mix of schedules,
    statuses and cursors it equals counting subscriber by subscriber."""
    from collections import Counter

    rows = []
    for i in range(40):
        status = SubscriberStatus.ACTIVE if i % 5 else SubscriberStatus.PENDING
        zone = ("UTC", "Asia/Kolkata")[i % 2]
        schedule = Schedule(
            list(Frequency)[i % len(Frequency)], i % 7, time(6 + i % 3, 30), zone,
            month_day=1 + i % 3, min_posts=1 + i % 2, max_wait=timedelta(hours=24 * (1 + i % 2)),
        )  # fmt: skip
        created = T0 + timedelta(hours=i % 4)
        rows.append(
            NewSubscriber(f"s{i}@example.com", None, status, (), schedule, created, created)
        )
    store.import_subscribers(rows)
    from feedpipe.store.subscribers import subscribers as table

    with store.engine.begin() as conn:  # a third were sent a digest: their cursor is that slot
        sent = table.update().where(table.c.id % 3 == 0).values(last_digest_at=T0 + timedelta(1))
        conn.execute(sent)
    each = Counter((s.schedule, s.cursor) for s in store.subscribers(SubscriberStatus.ACTIVE))
    grouped = {
        (sched, cursor): n for sched, cursor, n in store.schedule_counts(SubscriberStatus.ACTIVE)
    }
    assert grouped == dict(each) and sum(grouped.values()) == 32


def test_given_name_round_trips_through_add_import_contacts_and_preferences(
    store: SqlStore,
) -> None:
    added = store.add_subscriber(replace(new("gn@example.com"), given_name="Søren"))
    assert added.given_name == "Søren" and added.preferences.given_name == "Søren"
    assert store.import_subscribers([replace(new("gi@example.com"), given_name="山田")]) == []
    imported = store.subscriber_by_email("gi@example.com")
    assert imported is not None and imported.given_name == "山田"
    contacts = store.subscriber_contacts([added.id, imported.id])
    assert contacts == {
        added.id: Contact("gn@example.com", "Ada", "Søren"),
        imported.id: Contact("gi@example.com", "Ada", "山田"),
    }
    weekly = Schedule(Frequency.WEEKLY, 4, time(9, 0), "Asia/Kolkata")
    store.set_subscriber_preferences(added.id, Preferences(weekly, ("rust",), None))
    changed = store.subscriber_by_id(added.id)
    assert changed is not None and changed.given_name is None
    assert changed.preferences == Preferences(weekly, ("rust",), None)
    assert store.subscribers_by_ids([imported.id])[imported.id].given_name == "山田"


def test_migration_0013_adds_an_empty_given_name_to_existing_subscribers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(resources.files("feedpipe") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0011")
    with engine.begin() as conn:
        assert "given_name" not in {c["name"] for c in sa.inspect(conn).get_columns("subscribers")}
        conn.execute(
            sa.text(
                "INSERT INTO subscribers (email, email_key, name, status, categories, frequency,"
                " weekday, send_time, timezone, created_at, watermark) VALUES ('old@example.com',"
                " 'old@example.com', 'Old Reader', 'active', '[]', 'daily', 0, '08:00', 'UTC',"
                " '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')"
            )
        )
    engine.dispose()
    with SqlStore.open(url) as migrated:
        assert current_revision(migrated.engine) == HEAD_REVISION
        old = migrated.subscriber_by_email("old@example.com")
        assert old is not None and old.name == "Old Reader" and old.given_name is None
