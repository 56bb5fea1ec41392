"""Outbox tables: stored editions, one row per message, per-subscriber bounce counts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from feedpipe.model import SubscriberStatus
from feedpipe.store.schema import metadata
from feedpipe.store.types import UTCDateTime

FILL_LOCK = 0x66656564  # PostgreSQL advisory lock key serialising fills ("feed")


def fill_lock(conn: Connection) -> None:
    """PostgreSQL: fills (and subscriber removals) one at a time, until the transaction ends
    (SQLite's write lock already serialises them)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(FILL_LOCK)))


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
    # No foreign keys (migration 0018: on PostgreSQL they were half of a fill's insert cost):
    # rows are written by fills under the fill lock for subscribers read under it, after their
    # editions; `remove_subscriber` takes the same lock and deletes the subscriber's rows;
    # editions are never deleted; and a claim joins each row to its subscriber.
    sa.Column("subscriber_id", sa.Integer, nullable=False),
    sa.Column("edition_key", sa.String(64), nullable=False),
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
    sa.Column("since", UTCDateTime),  # the subscriber's watermark before this digest
    sa.Column("deadline", UTCDateTime),  # not sent by then: cancelled, merged into the next
    sa.UniqueConstraint("subscriber_id", "edition_key", name="uq_outbox_subscriber_id"),
    sa.Index("ix_outbox_state", "state", "next_attempt_at"),
    sa.Index("ix_outbox_message_id", "message_id"),  # inbound bounces name the message by it
)
# Leased rows only: a claim finds a crashed dispatcher's rows without a scan. Migration 0005
# makes it partial (WHERE lease_until IS NOT NULL) on both engines; it is declared here without
# the dialect keywords, which would import SQLAlchemy's PostgreSQL dialect (~40 ms) into every
# command on SQLite (autogenerate compares its name and columns, not its WHERE).
sa.Index("ix_outbox_lease", outbox.c.lease_until)

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
