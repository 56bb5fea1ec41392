"""outbox: a partial index on lease_until, so a claim takes crashed dispatchers' rows first."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_LEASED = sa.text("lease_until IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_outbox_lease",
        "outbox",
        ["lease_until"],
        sqlite_where=_LEASED,
        postgresql_where=_LEASED,
    )
    # Rows were `sending` from the claim on; now only from when a connection takes them, and a
    # claim no longer counts an attempt: nothing to convert (old leases simply run out).


def downgrade() -> None:
    op.drop_index("ix_outbox_lease", table_name="outbox")
