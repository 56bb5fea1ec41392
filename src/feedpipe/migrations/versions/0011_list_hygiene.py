"""List hygiene: the suppression list, delivery events (bounces, complaints), inbound messages."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("email_key", name="pk_suppressions"),
    )
    op.create_table(
        "delivery_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("subscriber_id", sa.Integer),
        sa.Column("outbox_id", sa.Integer),
        sa.Column("edition_key", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_events"),
    )
    op.create_index("ix_delivery_events_at", "delivery_events", ["at"])
    op.create_index(
        "ix_delivery_events_subscriber", "delivery_events", ["subscriber_id", "kind", "at"]
    )
    op.create_index("ix_delivery_events_edition", "delivery_events", ["edition_key"])
    op.create_table(
        "inbound_messages",
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary),
        sa.PrimaryKeyConstraint("key", name="pk_inbound_messages"),
    )
    op.create_index("ix_inbound_messages_status", "inbound_messages", ["status", "received_at"])
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_message_id", "outbox")
    op.drop_table("inbound_messages")
    op.drop_table("delivery_events")
    op.drop_table("suppressions")
