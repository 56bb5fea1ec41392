"""source_docs: a partial index of the documents with skips or warnings (a sync reads them)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UNCLEAN = sa.text("skips != '[]'")


def upgrade() -> None:
    op.create_index(
        "ix_source_docs_unclean",
        "source_docs",
        ["key"],
        sqlite_where=UNCLEAN,
        postgresql_where=UNCLEAN,
    )


def downgrade() -> None:
    op.drop_index("ix_source_docs_unclean", table_name="source_docs")
