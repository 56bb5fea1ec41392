"""feed_readers: feed fetches per feed and client, aggregated (no IP addresses)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_readers",
        sa.Column("feed", sa.String(300), primary_key=True),
        sa.Column("client", sa.String(300), primary_key=True),
        sa.Column("aggregator", sa.String(100), nullable=False),
        sa.Column("subscribers", sa.Integer),
        sa.Column("subscribers_at", UTCDateTime),
        sa.Column("fetches", sa.Integer, nullable=False),
        sa.Column("not_modified", sa.Integer, nullable=False),
        sa.Column("conditional", sa.Integer, nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_readers")
