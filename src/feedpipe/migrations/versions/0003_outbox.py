"""Durable outbox: editions (rendered once), one row per message, subscriber bounce counts."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "editions",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("post_ids", sa.Text, nullable=False),
        sa.Column("template", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_editions"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("edition_key", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("personalisation", sa.Text, nullable=False),
        sa.Column("message_id", sa.String(300), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", UTCDateTime),
        sa.Column("last_code", sa.Integer),
        sa.Column("last_reply", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("subscriber_id", "edition_key", name="uq_outbox_subscriber_id"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_outbox_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["edition_key"], ["editions.key"], name="fk_outbox_edition_key_editions"
        ),
    )
    op.create_index("ix_outbox_state", "outbox", ["state", "next_attempt_at"])
    op.create_table(
        "subscriber_bounces",
        sa.Column("subscriber_id", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failure_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("subscriber_id", name="pk_subscriber_bounces"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_subscriber_bounces_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("subscriber_bounces")
    op.drop_table("outbox")
    op.drop_table("editions")
