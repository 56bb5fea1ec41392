"""Store mixin for digest subscribers: add, bulk import, list, status, watermarks, post view."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from feedpipe.errors import DuplicateSubscriberError, StoreError
from feedpipe.model import (
    Action,
    Contact,
    DigestPost,
    Frequency,
    NewSubscriber,
    Preferences,
    Schedule,
    Subscriber,
    SubscriberStatus,
    TermKind,
    email_key,
    moves,
    transition,
)
from feedpipe.store.outbox_tables import fill_lock, outbox
from feedpipe.store.schema import metadata, post_terms, posts, terms
from feedpipe.store.sqlutil import CHUNK, chunked
from feedpipe.store.types import UTCDateTime

# Categories are a JSON list of term keys in the subscriber's chosen order (not a link table):
# order matters for section layout, imports stay one INSERT per row, and planning needs no join.
subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("categories", sa.Text, nullable=False, default="[]"),
    sa.Column("frequency", sa.String(8), nullable=False),
    sa.Column("weekday", sa.SmallInteger, nullable=False),
    sa.Column("send_time", sa.String(5), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("unsubscribed_at", UTCDateTime),
    sa.Column("watermark", UTCDateTime, nullable=False),
    sa.Column("last_digest_at", UTCDateTime),
    sa.Column("month_day", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("min_posts", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("max_wait_hours", sa.Integer, nullable=False, server_default="720"),
    sa.Column("given_name", sa.Text),  # migration 0013
    # When a plan may first act for them (digests.cadence.next_due), NULL: not known yet;
    # a fill reads only those due by it (migration 0016). The index serves status lookups
    # too (it replaced the one on status alone: one index less to update per moved row).
    sa.Column("next_due_at", UTCDateTime),
    sa.Index("ix_subscribers_due", "status", "next_due_at"),
    # Never reuse the id of a removed subscriber (SQLite would): ids sign unsubscribe links
    # and make Message-IDs, so a reused id could act on or collide with someone else's.
    sqlite_autoincrement=True,
)


class SubscribersMixin:
    """Subscribers and the light post view the digest planner reads."""

    engine: Engine

    def add_subscriber(self, new: NewSubscriber) -> Subscriber:
        """Store one subscriber; DuplicateSubscriberError when the address is taken."""
        try:
            with self.engine.begin() as conn:
                row_id = conn.execute(
                    sa.insert(subscribers).values(_values(new))
                ).inserted_primary_key
        except IntegrityError:
            raise DuplicateSubscriberError(f"{new.email} is already subscribed") from None
        assert row_id is not None
        found = self.subscriber_by_id(int(row_id[0]))
        assert found is not None
        return found

    def import_subscribers(self, rows: Sequence[NewSubscriber]) -> list[int]:
        """Insert many in one transaction; return the indexes of `rows` skipped as duplicates."""
        column = subscribers.c.email_key
        with self.engine.begin() as conn:
            taken: set[str] = set()
            for chunk in chunked(sorted({new.email_key for new in rows})):
                taken.update(conn.execute(sa.select(column).where(column.in_(chunk))).scalars())
            fresh: list[dict[str, Any]] = []
            duplicates: list[int] = []
            for index, new in enumerate(rows):
                key = new.email_key
                if key in taken:
                    duplicates.append(index)
                    continue
                taken.add(key)
                fresh.append(_values(new))
            if fresh:
                conn.execute(sa.insert(subscribers), fresh)
        return duplicates

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        return self._one(subscribers.c.id == subscriber_id)

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        return self._one(subscribers.c.email_key == email_key(email))

    def subscribers_by_ids(self, ids: Sequence[int]) -> dict[int, Subscriber]:
        out: dict[int, Subscriber] = {}
        read = _RowReader()
        with self.engine.connect() as conn:
            for chunk in chunked(ids):
                rows = conn.execute(_select().where(subscribers.c.id.in_(chunk)))
                out.update((r.id, read(r)) for r in rows)
        return out

    def subscribers(
        self,
        status: SubscriberStatus | None = None,
        category: str | None = None,
        frequency: Frequency | None = None,
    ) -> list[Subscriber]:
        """Subscribers by id; `category` (a term key) matches those who chose it or everything."""
        stmt = _select().order_by(subscribers.c.id)
        if status is not None:
            stmt = stmt.where(subscribers.c.status == status.value)
        if frequency is not None:
            stmt = stmt.where(subscribers.c.frequency == frequency.value)
        with self.engine.connect() as conn:
            found = list(map(_RowReader(), conn.execute(stmt)))
        if category is None:
            return found
        return [s for s in found if not s.categories or category in s.categories]

    def schedule_counts(self, status: SubscriberStatus) -> list[tuple[Schedule, datetime, int]]:
        """(schedule, cursor, how many) for each distinct schedule and cursor in `status`."""
        c = subscribers.c
        cursor = sa.func.coalesce(c.last_digest_at, c.created_at, type_=UTCDateTime)
        keys = (c.frequency, c.weekday, c.send_time, c.timezone, c.month_day, c.min_posts)
        group = (*keys, c.max_wait_hours, cursor)
        stmt = sa.select(*group, sa.func.count()).where(c.status == status.value).group_by(*group)
        reader = _RowReader()
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            (
                Schedule(
                    reader.frequency[freq], weekday, reader.time(at), zone, month_day, min_posts,
                    reader.wait(wait),
                ),
                when,
                count,
            )
            for freq, weekday, at, zone, month_day, min_posts, wait, when, count in rows
        ]  # fmt: skip

    def subscriber_page(
        self, after: int, limit: int, status: SubscriberStatus | None = None
    ) -> tuple[list[Subscriber], int | None]:
        """The subscribers in `status` (default: all) among the next `limit` ids above `after`,
        by id, and the last of those ids, where the next page starts (None: none is left).
        Keyset pages: each one read by the primary key, however far in."""
        with self.engine.connect() as conn:
            return subscriber_page(conn, after, limit, status)

    def watermark_floor(self, status: SubscriberStatus | None = None) -> datetime | None:
        """The oldest watermark of the subscribers in `status` (None: there are none)."""
        stmt = sa.select(sa.func.min(subscribers.c.watermark))
        if status is not None:
            stmt = stmt.where(subscribers.c.status == status.value)
        with self.engine.connect() as conn:
            found: datetime | None = conn.execute(stmt).scalar()
        return found

    def subscriber_contacts(self, ids: Sequence[int]) -> dict[int, Contact]:
        """Email and names by id; large sets are read in one scan instead of many IN lists."""
        c = subscribers.c
        cols = (c.id, c.email, c.name, c.given_name)
        wanted = set(ids)
        with self.engine.connect() as conn:
            if len(wanted) > 20 * CHUNK:
                rows = conn.execute(sa.select(*cols)).all()
            else:
                rows = [
                    r
                    for chunk in chunked(sorted(wanted))
                    for r in conn.execute(sa.select(*cols).where(subscribers.c.id.in_(chunk)))
                ]
        return {r.id: Contact(r.email, r.name, r.given_name) for r in rows if r.id in wanted}

    def remove_subscriber(self, subscriber_id: int) -> bool:
        """Delete a subscriber and their outbox rows (the outbox has no foreign key), under the
        fill lock: a fill page in progress commits first, and its rows are deleted too; a page
        after this does not read the subscriber."""
        with self.engine.begin() as conn:
            fill_lock(conn)
            conn.execute(sa.delete(outbox).where(outbox.c.subscriber_id == subscriber_id))
            result = conn.execute(sa.delete(subscribers).where(subscribers.c.id == subscriber_id))
        return bool(result.rowcount)

    def move_subscriber(
        self, subscriber_id: int, action: Action, at: datetime
    ) -> tuple[SubscriberStatus, SubscriberStatus] | None:
        """Apply `action` by the transition table, atomically: (old, new) status, None when
        there is no such subscriber; InvalidTransitionError (nothing changes) when not allowed."""
        for _ in range(3):  # the status changed between the read and the write: decide again
            with self.engine.begin() as conn:
                found = conn.execute(
                    sa.select(subscribers.c.status).where(subscribers.c.id == subscriber_id)
                ).scalar()
                if found is None:
                    return None
                old = SubscriberStatus(found)
                new = transition(old, action)
                if new is old or move_subscribers(conn, [subscriber_id], action, at, (old,)):
                    return old, new
        raise StoreError(f"subscriber {subscriber_id} keeps changing; try again")

    def advance_watermarks(self, watermarks: Mapping[int, datetime]) -> None:
        with self.engine.begin() as conn:
            advance_watermarks(conn, watermarks)

    def digest_posts(self, since: datetime, until: datetime) -> list[DigestPost]:
        """Posts that may have become available in (since, until], with category keys."""
        stmt = sa.select(
            posts.c.id,
            posts.c.first_seen_at,
            posts.c.published_at,
            posts.c.draft,
            posts.c.removed_at,
        ).where(
            sa.or_(posts.c.first_seen_at > since, posts.c.published_at > since),
            posts.c.first_seen_at <= until,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
            keys = _category_keys(conn, [r.id for r in rows])
        return [digest_post(r, keys) for r in rows]

    def set_subscriber_preferences(self, subscriber_id: int, prefs: Preferences) -> None:
        """Replace a subscriber's categories (term keys, chosen order), schedule and given
        name."""
        schedule = prefs.schedule
        self._update_subscriber(
            subscriber_id,
            categories=json.dumps(list(prefs.categories), ensure_ascii=False),
            frequency=schedule.frequency.value,
            weekday=schedule.weekday,
            send_time=f"{schedule.send_time:%H:%M}",
            timezone=schedule.timezone,
            month_day=schedule.month_day,
            min_posts=schedule.min_posts,
            max_wait_hours=_hours(schedule.max_wait),
            given_name=prefs.given_name,
            next_due_at=None,  # the schedule may have changed: the next fill works it out
        )

    def _update_subscriber(self, subscriber_id: int, **values: object) -> None:
        stmt = sa.update(subscribers).where(subscribers.c.id == subscriber_id).values(values)
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def _one(self, where: sa.ColumnElement[bool]) -> Subscriber | None:
        with self.engine.connect() as conn:
            row = conn.execute(_select().where(where)).first()
        return None if row is None else _RowReader()(row)


def subscriber_page(
    conn: Connection,
    after: int,
    limit: int,
    status: SubscriberStatus | None = None,
    until: int | None = None,
    due: datetime | None = None,
) -> tuple[list[Subscriber], int | None]:
    """`SubscribersMixin.subscriber_page` on an open connection (a fill reads its page inside
    the transaction that writes it), ids up to `until` only, and with `due` only those due
    by then (next_due_at at most `due`, or not known). The status is checked here, not in
    SQL: a page is then always a primary-key range scan, whatever the planner's statistics
    say (PostgreSQL without them picks the status index, then sorts all that is left, for
    every page)."""
    c = subscribers.c
    stmt = _select().where(c.id > after).order_by(c.id).limit(limit)
    if until is not None:
        stmt = stmt.where(c.id <= until)
    if due is not None:
        stmt = stmt.where(sa.or_(c.next_due_at.is_(None), c.next_due_at <= due))
    rows = conn.execute(stmt).all()
    if not rows:
        return [], None
    read, wanted = _RowReader(), None if status is None else status.value
    return [read(r) for r in rows if wanted is None or r.status == wanted], int(rows[-1].id)


def move_subscribers(
    conn: Connection,
    ids: Sequence[int],
    action: Action,
    at: datetime,
    only_from: Sequence[SubscriberStatus] | None = None,
) -> int:
    """Set-based `action` by the transition table: subscribers in a status it moves change,
    the others (a repeat, or not allowed) stay; confirming stamps confirmed_at once,
    unsubscribing unsubscribed_at, resuming skips what came out meanwhile. Rows changed."""
    changed = 0
    for to, froms in moves(action).items():
        allowed = [s.value for s in froms if only_from is None or s in only_from]
        if not allowed:
            continue
        values = {"status": to.value, **_stamps(action, at, conn.dialect.name)}
        for chunk in chunked(sorted(set(ids))):
            stmt = (
                sa.update(subscribers)
                .where(subscribers.c.id.in_(chunk), subscribers.c.status.in_(allowed))
                .values(values)
            )
            changed += conn.execute(stmt).rowcount
    return changed


def _stamps(action: Action, at: datetime, dialect: str) -> dict[str, Any]:
    c = subscribers.c
    if action is Action.CONFIRM:
        return {"confirmed_at": sa.func.coalesce(c.confirmed_at, at), "unsubscribed_at": None}
    if action is Action.UNSUBSCRIBE:
        return {"unsubscribed_at": at}
    if action is Action.RESUME:  # posts from the pause are skipped
        later = sa.func.max if dialect == "sqlite" else sa.func.greatest
        return {"watermark": later(c.watermark, at)}
    if action is Action.SUBSCRIBE:  # asking again: pending, awaiting a new confirmation
        return {"confirmed_at": None, "watermark": at}
    return {}


def advance_watermarks(conn: Connection, watermarks: Mapping[int, datetime]) -> None:
    """Move watermark and last_digest_at forward (never back), in chunks per value."""
    by_value: dict[datetime, list[int]] = defaultdict(list)
    for sub_id, when in watermarks.items():
        by_value[when].append(sub_id)
    for when, ids in by_value.items():
        for chunk in chunked(sorted(ids)):
            conn.execute(
                sa.update(subscribers)
                .where(subscribers.c.id.in_(chunk), subscribers.c.watermark < when)
                .values(watermark=when, last_digest_at=when, next_due_at=None)
            )


def digest_post(row: Any, keys: Mapping[int, tuple[str, ...]]) -> DigestPost:
    """The planner's view of a posts row (id, first_seen_at, published_at, draft, removed_at)."""
    return DigestPost(
        row.id,
        row.first_seen_at,
        row.published_at,
        row.draft,
        row.removed_at is not None,
        keys.get(row.id, ()),
    )


def _category_keys(conn: Connection, post_ids: list[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = defaultdict(list)
    for chunk in chunked(post_ids):
        stmt = (
            sa.select(post_terms.c.post_id, terms.c.key)
            .join(terms, terms.c.id == post_terms.c.term_id)
            .where(post_terms.c.post_id.in_(chunk), terms.c.kind == TermKind.CATEGORY.value)
            .order_by(post_terms.c.post_id, post_terms.c.position)
        )
        for r in conn.execute(stmt):
            out[r.post_id].append(r.key)
    return {k: tuple(v) for k, v in out.items()}


def _values(new: NewSubscriber) -> dict[str, Any]:
    sched = new.schedule
    return {
        "email": new.email,
        "email_key": new.email_key,
        "name": new.name,
        "status": new.status.value,
        "categories": json.dumps(list(new.categories), ensure_ascii=False),
        "frequency": sched.frequency.value,
        "weekday": sched.weekday,
        "send_time": f"{sched.send_time:%H:%M}",
        "timezone": sched.timezone,
        "month_day": sched.month_day,
        "min_posts": sched.min_posts,
        "max_wait_hours": _hours(sched.max_wait),
        "created_at": new.created_at,
        "confirmed_at": new.confirmed_at,
        "unsubscribed_at": new.unsubscribed_at,
        "watermark": new.created_at,
        "last_digest_at": None,
        "given_name": new.given_name,
    }


def _hours(wait: timedelta) -> int:
    return int(wait.total_seconds() // 3600)


def _select() -> sa.Select[Any]:
    """SELECT of every subscribers column, timestamps as the driver returns them (`_RowReader`
    converts each distinct value once: many subscribers share their watermark and slot)."""
    return sa.select(
        *(
            sa.type_coerce(c, NullType()).label(c.name) if isinstance(c.type, UTCDateTime) else c
            for c in subscribers.c
        )
    )


def _utc(value: datetime | str) -> datetime:
    """A driver's timestamp (SQLite: UTC text as UTCDateTime stores it) as aware UTC."""
    found = datetime.fromisoformat(value) if isinstance(value, str) else value
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


class _RowReader:
    """Rows of `_select()` to Subscribers, reusing parsed categories, send times and timestamps
    (few distinct values; the timestamp cache is bounded)."""

    STAMPS = 20_000

    def __init__(self) -> None:
        self.categories: dict[str, tuple[str, ...]] = {}
        self.times: dict[str, time] = {}
        self.status = {s.value: s for s in SubscriberStatus}
        self.frequency = {f.value: f for f in Frequency}
        self.waits: dict[int, timedelta] = {}
        self.stamps: dict[Any, Any] = {None: None}  # driver value → aware UTC

    def __call__(self, row: Any) -> Subscriber:
        # Table column order; the five timestamps are in Subscriber's field order too.
        (sub_id, email, _key, name, status, cats, freq, weekday, send_time, zone) = row[:10]
        created, confirmed, unsubscribed, watermark, last = row[10:15]
        month_day, min_posts, wait, given_name, due = row[15:20]
        try:  # every value seen before: dict lookups only
            at, max_wait = self.times[send_time], self.waits[wait]
            categories, stamps = self.categories[cats], self.stamps
            created, confirmed, watermark = stamps[created], stamps[confirmed], stamps[watermark]
            unsubscribed, last, due = stamps[unsubscribed], stamps[last], stamps[due]
        except KeyError:
            categories, at, max_wait = self._new_values(cats, send_time, wait)
            created, confirmed, unsubscribed, watermark, last = map(self.stamp, row[10:15])
            due = self.stamp(due)
        return Subscriber(
            sub_id, email, name, self.status[status], categories, self.frequency[freq], weekday,
            at, zone, created, confirmed, unsubscribed, watermark, last,
            month_day, min_posts, max_wait, given_name, due,
        )  # fmt: skip

    def _new_values(self, cats: str, send_time: str, wait: int) -> tuple[Any, time, timedelta]:
        categories = self.categories.get(cats)
        if categories is None:
            categories = self.categories[cats] = tuple(json.loads(cats))
        return categories, self.time(send_time), self.wait(wait)

    def stamp(self, value: datetime | str | None) -> Any:
        found = self.stamps.get(value)
        if found is None and value is not None:
            if len(self.stamps) >= self.STAMPS:
                self.stamps.clear()
                self.stamps[None] = None
            found = self.stamps[value] = _utc(value)
        return found

    def time(self, text: str) -> time:
        found = self.times.get(text)
        if found is None:
            found = self.times[text] = time.fromisoformat(text)
        return found

    def wait(self, hours: int) -> timedelta:
        found = self.waits.get(hours)
        if found is None:
            found = self.waits[hours] = timedelta(hours=hours)
        return found
