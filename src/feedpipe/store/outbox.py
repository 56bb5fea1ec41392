"""Store mixin for the outbox: editions, one row per message, leases, results and bounce counts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feedpipe.model import (
    CLAIMABLE,
    PENDING,
    Claim,
    Decision,
    Failure,
    FailureGroup,
    MessageKind,
    OutboxFill,
    OutboxState,
    RecordReport,
    SentEdition,
    Subscriber,
    SubscriberStatus,
)
from feedpipe.store.due import advance_subscribers, due_ranges, set_next_due
from feedpipe.store.hygiene import smtp_bounce_events, suppressed_between
from feedpipe.store.outbox_claim import (
    claimed,
    due_rows,
    lease_expired,
    lease_rows,
    mark_sending,
    renew_rows,
)
from feedpipe.store.outbox_insert import insert_editions, insert_messages
from feedpipe.store.outbox_late import expire_late
from feedpipe.store.outbox_record import (
    bounce,
    finish_rows,
    record_others,
    record_sent,
    reset_bounces,
)
from feedpipe.store.outbox_tables import (
    STOPPED,
    editions,
    fill_lock,
    outbox,
    subscriber_bounces,
)
from feedpipe.store.schema import meta
from feedpipe.store.sqlutil import chunked, dialect_insert
from feedpipe.store.subscribers import subscriber_page

T = TypeVar("T")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes SQLite's write lock at once (BEGIN IMMEDIATE); plain on others."""
    with engine.connect() as conn, _transaction(conn):
        yield conn


@contextmanager
def _transaction(conn: Connection) -> Iterator[None]:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


class OutboxMixin:
    """Editions and outbox rows: fill, claim, record, inspect."""

    engine: Engine

    def fill_outbox(self, make: Callable[[], OutboxFill]) -> tuple[OutboxFill, int, int]:
        """Call `make` under the fill lock, then write its editions, messages and watermarks.

        One transaction: a crash leaves either everything or nothing. Rows already present
        (same subscriber and edition) are kept. Returns the fill and the editions and
        messages inserted.
        """
        with write_transaction(self.engine) as conn:
            fill_lock(conn)
            fill = make()
            added_editions = insert_editions(conn, fill)
            added = insert_messages(conn, fill.messages, fill.now)
            _move(conn, fill)
        return fill, added_editions, added

    def fill_outbox_page(
        self,
        after: int,
        limit: int,
        make: Callable[[Sequence[Subscriber], frozenset[int]], OutboxFill],
        until: int | None = None,
        due: datetime | None = None,
    ) -> tuple[OutboxFill | None, int, int, int] | None:
        """One page of a fill, in one transaction under the fill lock: read the next `limit`
        subscribers after id `after` (up to id `until`; with `due`, only those due by then:
        see `due_ranges`), call `make` with the active ones and the ids of those whose
        address is suppressed, and write its editions, messages and watermarks.
        Returns the fill (None: no one active in the page), the editions and messages
        inserted and the last id read (where the next page starts); None when no subscriber
        is left.

        The page is read inside the transaction that moves its watermarks, so a concurrent
        fill (pages interleave) never plans a subscriber twice; a crash keeps the pages
        committed before it, each with its rows and watermarks, and nothing of this one.
        The rows name subscribers read under the lock (which `remove_subscriber` takes too)
        and editions written before them (the outbox has no foreign keys: migration 0018).
        """
        with write_transaction(self.engine) as conn:
            fill_lock(conn)
            active = SubscriberStatus.ACTIVE
            subs, last = subscriber_page(conn, after, limit, active, until, due)
            if last is None:
                return None
            if not subs:
                return None, 0, 0, last
            fill = make(subs, suppressed_between(conn, after, last))
            added_editions = insert_editions(conn, fill)
            added = insert_messages(conn, fill.messages, fill.now)
            _move(conn, fill)
        return fill, added_editions, added, last

    def due_ranges(self, now: datetime, size: int) -> list[tuple[int, int]]:
        """(after, until] id ranges of `size` active subscribers due by `now` each, by id:
        what a fill at `now` reads (page by page, `fill_outbox_page` with `due`)."""
        with self.engine.connect() as conn:
            return due_ranges(conn, now, size)

    def expire_outbox(self, now: datetime) -> int:
        """Cancel digests past their deadline and give their posts back to the next digest."""
        with write_transaction(self.engine) as conn:
            return expire_late(conn, now)

    def stored_edition_keys(self, keys: Sequence[str]) -> set[str]:
        with self.engine.connect() as conn:
            return {
                k
                for chunk in chunked(keys)
                for k in conn.execute(sa.select(editions.c.key).where(editions.c.key.in_(chunk)))
                .scalars()
                .all()
            }

    def edition_templates(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Serialised MIME templates by edition key."""
        stmt = sa.select(editions.c.key, editions.c.template)
        with self.engine.connect() as conn:
            return {
                r.key: bytes(r.template)
                for chunk in chunked(keys)
                for r in conn.execute(stmt.where(editions.c.key.in_(chunk)))
            }

    def claim_outbox(self, owner: str, now: datetime, lease: timedelta, limit: int) -> Claim:
        """Lease up to `limit` due messages to `owner`; stopped subscribers' rows are cancelled.

        Rows whose lease ran out (a crashed dispatcher's) come first, then queued or retry rows
        whose time has come. A claim changes neither the state (a row becomes `sending` only
        when a connection takes it, `mark` in `record_outbox`) nor the attempt count.
        PostgreSQL skips rows another claimer has locked; SQLite holds the write lock.
        """
        with write_transaction(self.engine) as conn:
            expired = expire_late(conn, now)
            picked = list(conn.execute(lease_expired(conn, now, limit)).all())
            if len(picked) < limit:
                taken = {r.id for r in picked}
                fresh = conn.execute(due_rows(conn, now, limit)).all()
                picked += [r for r in fresh if r.id not in taken][: limit - len(picked)]
            stopped = [r.id for r in picked if r.status in STOPPED or r.suppressed]
            live = [r.id for r in picked if r.status not in STOPPED and not r.suppressed]
            if stopped:
                conn.execute(finish_rows(stopped, OutboxState.CANCELLED, now))
            rows = conn.execute(lease_rows(live, owner, now + lease, now)).all() if live else []
        messages = tuple(sorted(map(claimed, rows), key=lambda m: m.outbox_id))
        return Claim(messages, len(stopped), expired)

    def renew_outbox(
        self, owner: str, ids: Sequence[int], now: datetime, lease: timedelta
    ) -> set[int]:
        """Extend `owner`'s lease on these unfinished rows (the dispatcher's heartbeat); returns
        the ids it still holds (the others were taken over after their lease ran out)."""
        with write_transaction(self.engine) as conn:
            return renew_rows(conn, owner, ids, now + lease, now)

    def record_outbox(
        self,
        owner: str,
        decisions: Sequence[Decision],
        now: datetime,
        bounce_limit: int,
        taken: Sequence[int] = (),
    ) -> RecordReport:
        """In one transaction: mark `taken` rows `sending` (a connection took them), record
        results, and apply the bounce limit."""
        with write_transaction(self.engine) as conn:
            mark_sending(conn, owner, taken, now)
            record_sent(conn, [d for d in decisions if d.state is OutboxState.SENT], now)
            others = [d for d in decisions if d.state is not OutboxState.SENT]
            record_others(conn, owner, others, now)
            sent = {d.subscriber_id for d in decisions if d.state is OutboxState.SENT}
            reset_bounces(conn, sorted(sent))
            # a message sent in the same group resets the count: its failure is not counted
            smtp_bounce_events(
                conn, [d for d in decisions if d.bounce and d.subscriber_id not in sent], now
            )
            bumped = [
                d.subscriber_id for d in decisions if d.bounce and d.subscriber_id not in sent
            ]
            return bounce(conn, bumped, now, bounce_limit) if bumped else RecordReport()

    def confirmations_since(self, since: datetime, domain: str) -> tuple[int, int]:
        """Confirmation messages queued since `since`: in all, and to addresses at `domain`
        (the subscribe budgets: counted in the store, so they hold across processes)."""
        recent = sa.and_(outbox.c.kind == MessageKind.CONFIRM.value, outbox.c.created_at >= since)
        at_domain = sa.func.lower(outbox.c.recipient).endswith(
            "@" + domain.casefold(), autoescape=True
        )
        stmt = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((at_domain, 1), else_=0)), 0)
        ).where(recent)
        with self.engine.connect() as conn:
            total, same = conn.execute(stmt).one()
        return int(total), int(same)

    def update_meta(self, key: str, change: Callable[[str | None], tuple[str, T]]) -> T:
        """Read-modify-write one meta value atomically across processes (the shared send
        budgets): `change(old)` gives the new value and a result. SQLite: under the write lock;
        PostgreSQL: the row locked."""
        with write_transaction(self.engine) as conn:
            add = dialect_insert(conn, meta).values(key=key, value="")
            conn.execute(add.on_conflict_do_nothing(index_elements=[meta.c.key]))
            select = sa.select(meta.c.value).where(meta.c.key == key)
            if conn.dialect.name == "postgresql":
                select = select.with_for_update()
            old = conn.execute(select).scalar()
            value, result = change(str(old) if old else None)
            conn.execute(sa.update(meta).where(meta.c.key == key).values(value=value))
        return result

    def outbox_counts(self) -> dict[OutboxState, int]:
        stmt = sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
        with self.engine.connect() as conn:
            found = {OutboxState(state): int(n) for state, n in conn.execute(stmt)}
        return {s: found.get(s, 0) for s in OutboxState}

    def outbox_failures(self, limit: int = 10) -> list[Failure]:
        """The most recent failing messages (failed, or retry with a reply), newest first."""
        cols = (outbox.c.id, outbox.c.recipient, outbox.c.edition_key, outbox.c.attempts)
        stmt = (
            sa.select(
                *cols, outbox.c.last_code, outbox.c.last_reply, outbox.c.updated_at, outbox.c.state
            )
            .where(_failing())
            .order_by(outbox.c.updated_at.desc(), outbox.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                Failure(*r[:5], r.last_reply or "", r.updated_at, OutboxState(r.state))
                for r in conn.execute(stmt)
            ]

    def outbox_failure_groups(self, limit: int = 10) -> list[FailureGroup]:
        """Failing messages grouped by state and last reply, the largest groups first."""
        count = sa.func.count().label("messages")
        last = sa.func.max(outbox.c.updated_at).label("last_at")
        keys = (outbox.c.state, outbox.c.last_code, outbox.c.last_reply)
        stmt = (
            sa.select(*keys, count, last)
            .where(_failing())
            .group_by(*keys)
            .order_by(count.desc(), last.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                FailureGroup(OutboxState(r.state), r.last_code, r.last_reply or "", r[3], r[4])
                for r in conn.execute(stmt)
            ]

    def retry_failed_outbox(self, now: datetime) -> int:
        """Queue every failed message again with a fresh attempt count; returns how many."""
        stmt = (
            sa.update(outbox)
            .where(outbox.c.state == OutboxState.FAILED.value)
            .values(state=OutboxState.QUEUED.value, attempts=0, next_attempt_at=now, updated_at=now)
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def outbox_next_due(self) -> datetime | None:
        """The earliest time an unfinished message becomes claimable (None: nothing left)."""
        stmt = sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
            outbox.c.state.in_([s.value for s in CLAIMABLE])
        )
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(stmt).scalar()
        return value

    def outbox_messages(self, subscriber_id: int) -> list[tuple[str, OutboxState, int, str]]:
        """(edition key, state, attempts, Message-ID) of a subscriber's messages, oldest first."""
        cols = (outbox.c.edition_key, outbox.c.state, outbox.c.attempts, outbox.c.message_id)
        stmt = sa.select(*cols).where(outbox.c.subscriber_id == subscriber_id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.order_by(outbox.c.id)).all()
        return [(r[0], OutboxState(r[1]), r[2], r[3]) for r in rows]

    def outbox_next_attempts(self, ids: Sequence[int]) -> dict[int, datetime | None]:
        stmt = sa.select(outbox.c.id, outbox.c.next_attempt_at)
        with self.engine.connect() as conn:
            return {
                r.id: r.next_attempt_at
                for chunk in chunked(ids)
                for r in conn.execute(stmt.where(outbox.c.id.in_(chunk)))
            }

    def release_outbox(self, owner_prefix: str, now: datetime) -> int:
        """Hand back the rows a stopping process still holds (its leases start with
        `owner_prefix`): they become due at once for any worker, with the same Message-IDs."""
        stmt = (
            sa.update(outbox)
            .where(
                outbox.c.state.in_([s.value for s in CLAIMABLE]),
                outbox.c.lease_owner.startswith(owner_prefix, autoescape=True),
            )
            .values(
                state=sa.case(
                    (outbox.c.state == OutboxState.SENDING.value, OutboxState.RETRY.value),
                    else_=outbox.c.state,
                ),
                next_attempt_at=now,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def cancel_outbox(self, subscriber_id: int, now: datetime) -> int:
        """Queued and retrying messages of a subscriber become cancelled (in flight ones finish)."""
        stmt = (
            sa.update(outbox)
            .where(
                outbox.c.subscriber_id == subscriber_id,
                outbox.c.state.in_([s.value for s in PENDING]),
            )
            .values(state=OutboxState.CANCELLED.value, next_attempt_at=None, updated_at=now)
        )
        with self.engine.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def sent_editions(
        self,
        limit: int,
        key: str | None = None,
        planned: tuple[datetime, datetime] | None = None,
    ) -> list[SentEdition]:
        """Editions with at least one digest accepted by the server, newest send first;
        `planned`: only those rendered in [start, end)."""
        sent_at = sa.func.max(outbox.c.sent_at).label("sent_at")
        cols = (
            editions.c.key,
            editions.c.subject,
            editions.c.post_ids,
            editions.c.template,
            editions.c.created_at,
        )
        stmt = (
            sa.select(*cols, sent_at)
            .join(outbox, outbox.c.edition_key == editions.c.key)
            .where(
                outbox.c.state == OutboxState.SENT.value,
                outbox.c.kind == MessageKind.DIGEST.value,
            )
            .group_by(*cols)
            .order_by(sent_at.desc(), editions.c.key)
            .limit(limit)
        )
        if key is not None:
            stmt = stmt.where(editions.c.key == key)
        if planned is not None:
            start, end = planned
            stmt = stmt.where(editions.c.created_at >= start, editions.c.created_at < end)
        with self.engine.connect() as conn:
            return [_sent(r) for r in conn.execute(stmt)]

    def subscriber_failures(self, subscriber_id: int) -> int:
        """Consecutive permanent failures counted toward the bounce limit."""
        stmt = sa.select(subscriber_bounces.c.failures).where(
            subscriber_bounces.c.subscriber_id == subscriber_id
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)


def _sent(row: Any) -> SentEdition:
    ids = tuple(int(i) for i in json.loads(row.post_ids))
    return SentEdition(
        row.key, row.subject, len(ids), row.template, row.sent_at, ids, row.created_at
    )


def _move(conn: Connection, fill: OutboxFill) -> None:
    """A fill's subscriber moves: cursors, watermarks and next_due_at."""
    advance_subscribers(conn, fill.advances, fill.next_due)
    set_next_due(conn, fill.next_due, fill.advances.keys())


def _failing() -> sa.ColumnElement[bool]:
    """Rows whose last attempt failed: given up, or waiting to retry after a reply or error."""
    retry = sa.and_(outbox.c.state == OutboxState.RETRY.value, outbox.c.last_reply.is_not(None))
    return sa.or_(outbox.c.state == OutboxState.FAILED.value, retry)
