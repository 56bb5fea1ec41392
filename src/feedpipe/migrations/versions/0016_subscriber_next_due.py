"""subscribers.next_due_at, indexed after status (replacing the status index): fills read due."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL (not known yet) for every stored subscriber: the next fill reads them all once
    # and stores theirs (digests.cadence.next_due), as it does for new subscribers.
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("next_due_at", UTCDateTime, nullable=True))
    op.create_index("ix_subscribers_due", "subscribers", ["status", "next_due_at"])
    # status is its first column: it serves what the index on status alone did, and a moved
    # subscriber (every one a fill plans) has one index less to update on PostgreSQL
    op.drop_index("ix_subscribers_status", table_name="subscribers")


def downgrade() -> None:
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.drop_index("ix_subscribers_due", table_name="subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("next_due_at")
