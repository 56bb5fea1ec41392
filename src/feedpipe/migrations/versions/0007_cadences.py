"""Cadences and deadlines: subscribers' month day, min_posts and max_wait; outbox deadlines."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(
            sa.Column("month_day", sa.SmallInteger, nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("min_posts", sa.SmallInteger, nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("max_wait_hours", sa.Integer, nullable=False, server_default="720")
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("since", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("deadline", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("deadline")
        batch.drop_column("since")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("max_wait_hours")
        batch.drop_column("min_posts")
        batch.drop_column("month_day")
