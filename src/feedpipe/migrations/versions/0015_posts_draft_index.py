"""posts (draft, changed_at): the retractions query of every build reads an index, not the table."""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_posts_draft_changed", "posts", ["draft", "changed_at"])


def downgrade() -> None:
    op.drop_index("ix_posts_draft_changed", table_name="posts")
