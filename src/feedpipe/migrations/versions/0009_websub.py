"""websub_subscriptions: the hub's verified subscriptions (`feedpipe serve`, [websub] serve)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "websub_subscriptions",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("topic_key", sa.String(64), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("callback", sa.Text, nullable=False),
        sa.Column("secret", sa.Text),
        sa.Column("lease_seconds", sa.Integer, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_websub_subscriptions"),
    )
    op.create_index(
        "ix_websub_subscriptions_topic_key", "websub_subscriptions", ["topic_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_websub_subscriptions_topic_key", table_name="websub_subscriptions")
    op.drop_table("websub_subscriptions")
