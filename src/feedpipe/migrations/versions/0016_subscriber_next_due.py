"""subscribers.next_due_at and its index: a fill reads only the subscribers due by its time."""

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


def downgrade() -> None:
    op.drop_index("ix_subscribers_due", table_name="subscribers")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("next_due_at")
