"""Store mixin for the outbox: editions, one row per message, leases, results and bounce counts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from feedpipe.digests.model import SubscriberStatus
from feedpipe.emails.model import Recipient
from feedpipe.outbox.model import (
    CLAIMABLE,
    PENDING,
    Claim,
    ClaimedMessage,
    Decision,
    Failure,
    MessageKind,
    NewMessage,
    OutboxFill,
    OutboxState,
    RecordReport,
    SentEdition,
)
from feedpipe.store.schema import metadata
from feedpipe.store.subscribers import advance_watermarks, subscribers
from feedpipe.store.types import UTCDateTime

CHUNK = 500
FILL_LOCK = 0x66656564  # PostgreSQL advisory lock key serialising fills ("feed")
STOPPED = tuple(
    s.value
    for s in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("post_ids", sa.Text, nullable=False),  # JSON list
    sa.Column("template", sa.LargeBinary, nullable=False),  # MimeTemplate.dump()
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("edition_key", sa.String(64), sa.ForeignKey("editions.key"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("personalisation", sa.Text, nullable=False),  # JSON: name, unsubscribe/prefs URLs
    sa.Column("message_id", sa.String(300), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime),  # NULL once finished; lease end while sending
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("last_code", sa.Integer),
    sa.Column("last_reply", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.UniqueConstraint("subscriber_id", "edition_key", name="uq_outbox_subscriber_id"),
    sa.Index("ix_outbox_state", "state", "next_attempt_at"),
)

# Consecutive permanent failures per subscriber (a row only while there are some). A table of
# its own, not a subscribers column: subscriber rows are read positionally elsewhere.
subscriber_bounces = sa.Table(
    "subscriber_bounces",
    metadata,
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", UTCDateTime, nullable=False),
)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes SQLite's write lock at once (BEGIN IMMEDIATE); plain on others."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def _insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT for the connection's dialect (for ON CONFLICT clauses)."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(FILL_LOCK)))
            fill = make()
            added_editions = _insert_editions(conn, fill)
            added = _insert_messages(conn, fill.messages, fill.now)
            advance_watermarks(conn, fill.watermarks)
        return fill, added_editions, added

    def stored_edition_keys(self, keys: Sequence[str]) -> set[str]:
        with self.engine.connect() as conn:
            return {
                k
                for chunk in _chunks(keys)
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
                for chunk in _chunks(keys)
                for r in conn.execute(stmt.where(editions.c.key.in_(chunk)))
            }

    def claim_outbox(self, owner: str, now: datetime, lease: timedelta, limit: int) -> Claim:
        """Lease up to `limit` due messages to `owner`; stopped subscribers' rows are cancelled.

        Due: queued or retry whose time has come, or sending whose lease ran out (a crashed
        worker's). PostgreSQL skips rows another claimer has locked; SQLite holds the write lock.
        """
        with write_transaction(self.engine) as conn:
            picked = conn.execute(_due(conn, now, limit)).all()
            stopped = [r.id for r in picked if r.status in STOPPED]
            live = [r.id for r in picked if r.status not in STOPPED]
            if stopped:
                conn.execute(_finish(stopped, OutboxState.CANCELLED, now))
            rows = conn.execute(_lease(live, owner, now + lease, now)).all() if live else []
        return Claim(tuple(sorted(map(_claimed, rows), key=lambda m: m.outbox_id)), len(stopped))

    def record_outbox(
        self, owner: str, decisions: Sequence[Decision], now: datetime, bounce_limit: int
    ) -> RecordReport:
        """Record one batch's results in one transaction, and apply the bounce limit."""
        with write_transaction(self.engine) as conn:
            _record_sent(conn, [d for d in decisions if d.state is OutboxState.SENT], now)
            others = [d for d in decisions if d.state is not OutboxState.SENT]
            _record_others(conn, owner, others, now)
            _reset_bounces(
                conn, [d.subscriber_id for d in decisions if d.state is OutboxState.SENT]
            )
            bumped = [d.subscriber_id for d in decisions if d.bounce]
            return _bounce(conn, bumped, now, bounce_limit) if bumped else RecordReport()

    def outbox_counts(self) -> dict[OutboxState, int]:
        stmt = sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
        with self.engine.connect() as conn:
            found = {OutboxState(state): int(n) for state, n in conn.execute(stmt)}
        return {s: found.get(s, 0) for s in OutboxState}

    def outbox_failures(self, limit: int = 10) -> list[Failure]:
        """The most recent failed messages, newest first."""
        cols = (outbox.c.id, outbox.c.recipient, outbox.c.edition_key, outbox.c.attempts)
        stmt = (
            sa.select(*cols, outbox.c.last_code, outbox.c.last_reply, outbox.c.updated_at)
            .where(outbox.c.state == OutboxState.FAILED.value)
            .order_by(outbox.c.updated_at.desc(), outbox.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [Failure(*r[:5], r.last_reply or "", r.updated_at) for r in conn.execute(stmt)]

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
                for chunk in _chunks(ids)
                for r in conn.execute(stmt.where(outbox.c.id.in_(chunk)))
            }

    def release_outbox(self, owner_prefix: str, now: datetime) -> int:
        """Hand back the rows a stopping process still holds (its leases start with
        `owner_prefix`): they become due at once for any worker, with the same Message-IDs."""
        stmt = (
            sa.update(outbox)
            .where(
                outbox.c.state == OutboxState.SENDING.value,
                outbox.c.lease_owner.startswith(owner_prefix, autoescape=True),
            )
            .values(
                state=OutboxState.RETRY.value, next_attempt_at=now, lease_owner=None, updated_at=now
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

    def sent_editions(self, limit: int, key: str | None = None) -> list[SentEdition]:
        """Editions with at least one digest accepted by the server, newest send first."""
        sent_at = sa.func.max(outbox.c.sent_at).label("sent_at")
        cols = (editions.c.key, editions.c.subject, editions.c.post_ids, editions.c.template)
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
        with self.engine.connect() as conn:
            return [
                SentEdition(r.key, r.subject, len(json.loads(r.post_ids)), r.template, r.sent_at)
                for r in conn.execute(stmt)
            ]

    def subscriber_failures(self, subscriber_id: int) -> int:
        """Consecutive permanent failures counted toward the bounce limit."""
        stmt = sa.select(subscriber_bounces.c.failures).where(
            subscriber_bounces.c.subscriber_id == subscriber_id
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)


def _insert_editions(conn: Connection, fill: OutboxFill) -> int:
    if not fill.editions:
        return 0
    rows = [
        {
            "key": e.key,
            "created_at": e.created_at,
            "subject": e.subject,
            "post_ids": json.dumps(list(e.post_ids)),
            "template": e.template,
        }
        for e in fill.editions
    ]
    stmt = _insert(conn, editions).on_conflict_do_nothing().returning(editions.c.key)
    return len(conn.execute(stmt, rows).all())


def _message_values(message: NewMessage, now: datetime) -> dict[str, Any]:
    r = message.recipient
    personal = {"name": r.name, "unsubscribe_url": r.unsubscribe_url}
    personal["preferences_url"] = r.preferences_url
    return {
        "subscriber_id": r.subscriber_id,
        "edition_key": message.edition_key,
        "kind": message.kind.value,
        "recipient": r.email,
        "personalisation": json.dumps(personal, ensure_ascii=False),
        "message_id": message.message_id,
        "state": OutboxState.QUEUED.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _insert_messages(conn: Connection, messages: Sequence[NewMessage], now: datetime) -> int:
    """Insert rows, skipping (subscriber, edition) pairs already present; returns the count."""
    stmt = _insert(conn, outbox).on_conflict_do_nothing().returning(outbox.c.id)
    added = 0
    for chunk in _chunks(messages, 2000):
        added += len(conn.execute(stmt, [_message_values(m, now) for m in chunk]).all())
    return added


def _due(conn: Connection, now: datetime, limit: int) -> sa.Select[Any]:
    """Ids (and subscriber status) of up to `limit` claimable rows, locked where supported."""
    stmt = (
        sa.select(outbox.c.id, subscribers.c.status)
        .join(subscribers, subscribers.c.id == outbox.c.subscriber_id)
        .where(
            outbox.c.state.in_([s.value for s in CLAIMABLE]),
            outbox.c.next_attempt_at <= now,
        )
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=outbox)
    return stmt


def _lease(ids: list[int], owner: str, until: datetime, now: datetime) -> Any:
    return (
        sa.update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            state=OutboxState.SENDING.value,
            lease_owner=owner,
            lease_until=until,
            next_attempt_at=until,
            attempts=outbox.c.attempts + 1,
            updated_at=now,
        )
        .returning(
            outbox.c.id,
            outbox.c.subscriber_id,
            outbox.c.edition_key,
            outbox.c.recipient,
            outbox.c.personalisation,
            outbox.c.message_id,
            outbox.c.attempts,
        )
    )


def _claimed(row: Any) -> ClaimedMessage:
    personal = json.loads(row.personalisation)
    recipient = Recipient(
        row.subscriber_id,
        row.recipient,
        personal.get("name"),
        personal["unsubscribe_url"],
        personal["preferences_url"],
    )
    return ClaimedMessage(row.id, row.edition_key, recipient, row.message_id, row.attempts)


def _finish(ids: Sequence[int], state: OutboxState, now: datetime) -> Any:
    return (
        sa.update(outbox)
        .where(outbox.c.id.in_(ids))
        .values(
            state=state.value,
            next_attempt_at=None,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
        )
    )


def _record_sent(conn: Connection, sent: Sequence[Decision], now: datetime) -> None:
    """Sent is recorded even if the lease was lost meanwhile: it is true either way."""
    if not sent:
        return
    stmt = (
        sa.update(outbox)
        .where(outbox.c.id == sa.bindparam("b_id"), outbox.c.state == OutboxState.SENDING.value)
        .values(
            state=OutboxState.SENT.value,
            sent_at=now,
            updated_at=now,
            next_attempt_at=None,
            lease_owner=None,
            lease_until=None,
            last_code=sa.bindparam("b_code"),
            last_reply=sa.bindparam("b_reply"),
        )
    )
    conn.execute(stmt, [{"b_id": d.outbox_id, "b_code": d.code, "b_reply": d.reply} for d in sent])


def _record_others(
    conn: Connection, owner: str, decided: Sequence[Decision], now: datetime
) -> None:
    """Retry and failure, only while this worker still holds the lease."""
    if not decided:
        return
    stmt = (
        sa.update(outbox)
        .where(
            outbox.c.id == sa.bindparam("b_id"),
            outbox.c.state == OutboxState.SENDING.value,
            outbox.c.lease_owner == owner,
        )
        .values(
            state=sa.bindparam("b_state"),
            next_attempt_at=sa.bindparam("b_next", type_=UTCDateTime),
            attempts=outbox.c.attempts - sa.bindparam("b_uncount"),
            updated_at=sa.bindparam("b_now", type_=UTCDateTime),
            lease_owner=None,
            lease_until=None,
            last_code=sa.bindparam("b_code"),
            last_reply=sa.bindparam("b_reply"),
        )
    )
    conn.execute(stmt, [_other_params(d, now) for d in decided])


def _other_params(d: Decision, now: datetime) -> dict[str, Any]:
    return {
        "b_id": d.outbox_id,
        "b_state": d.state.value,
        "b_next": d.next_attempt_at,
        "b_uncount": 0 if d.counted else 1,
        "b_now": now,
        "b_code": d.code,
        "b_reply": d.reply,
    }


def _reset_bounces(conn: Connection, subscriber_ids: Sequence[int]) -> None:
    for chunk in _chunks(sorted(set(subscriber_ids))):
        conn.execute(
            sa.delete(subscriber_bounces).where(subscriber_bounces.c.subscriber_id.in_(chunk))
        )


def _bounce(conn: Connection, bumped: Sequence[int], now: datetime, limit: int) -> RecordReport:
    """Count permanent failures; at `limit` the subscriber is bounced and their queue cancelled."""
    stmt = _insert(conn, subscriber_bounces)
    stmt = stmt.on_conflict_do_update(
        index_elements=[subscriber_bounces.c.subscriber_id],
        set_={"failures": subscriber_bounces.c.failures + 1, "last_failure_at": now},
    )
    conn.execute(
        stmt, [{"subscriber_id": i, "failures": 1, "last_failure_at": now} for i in bumped]
    )
    over = sorted(
        conn.execute(
            sa.select(subscriber_bounces.c.subscriber_id).where(
                subscriber_bounces.c.subscriber_id.in_(sorted(set(bumped))),
                subscriber_bounces.c.failures >= limit,
            )
        ).scalars()
    )
    if not over:
        return RecordReport()
    conn.execute(
        sa.update(subscribers)
        .where(subscribers.c.id.in_(over))
        .values(status=SubscriberStatus.BOUNCED.value)
    )
    pending = sa.select(outbox.c.id).where(
        outbox.c.subscriber_id.in_(over), outbox.c.state.in_([s.value for s in PENDING])
    )
    ids = list(conn.execute(pending).scalars())
    if ids:
        conn.execute(_finish(ids, OutboxState.CANCELLED, now))
    return RecordReport(tuple(over), len(ids))
