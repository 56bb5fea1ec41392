"""subscribe_intake: public-form requests stored before their reply, until their work is done."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribe_intake",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("accepted_at", UTCDateTime, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribe_intake"),
    )
    op.create_index("ix_subscribe_intake_lease_owner", "subscribe_intake", ["lease_owner"])
    op.create_index("ix_subscribe_intake_lease_until", "subscribe_intake", ["lease_until"])


def downgrade() -> None:
    op.drop_table("subscribe_intake")
