"""Digest subscribers: one row each, categories as a JSON list of term keys."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("frequency", sa.String(8), nullable=False),
        sa.Column("weekday", sa.SmallInteger, nullable=False),
        sa.Column("send_time", sa.String(5), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("confirmed_at", UTCDateTime),
        sa.Column("unsubscribed_at", UTCDateTime),
        sa.Column("watermark", UTCDateTime, nullable=False),
        sa.Column("last_digest_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("email_key", name="uq_subscribers_email_key"),
        sqlite_autoincrement=True,  # ids are never reused (tokens and Message-IDs name them)
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])


def downgrade() -> None:
    op.drop_table("subscribers")
