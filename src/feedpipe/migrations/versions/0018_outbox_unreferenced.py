"""outbox: no foreign keys (subscriber, edition); the store keeps both references itself."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0016"  # 0017 was reserved by parallel work and never used
branch_labels = None
depends_on = None

_SUBSCRIBER = "fk_outbox_subscriber_id_subscribers"
_EDITION = "fk_outbox_edition_key_editions"
_LEASED = sa.text("lease_until IS NOT NULL")


def upgrade() -> None:
    # On PostgreSQL the two checks were half of an outbox insert's cost (a KEY SHARE lock per
    # row on its subscriber and on its edition), and they kept COPY from writing rows in bulk.
    # What they guaranteed holds by construction (docs/outbox.md, "Fill"): rows are written by
    # fills under the fill lock, for subscribers read under it and editions written before
    # them; a subscriber is removed under the same lock together with their rows
    # (store.subscribers.remove_subscriber); editions are never deleted.
    _alter(add=False)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE subscriber_id NOT IN (SELECT id FROM subscribers)")
    _alter(add=True)


def _alter(add: bool) -> None:
    """Drop or add both keys in batch mode (SQLite copies the table); the partial lease index,
    which the copy would not keep partial, is dropped first and made again."""
    op.drop_index("ix_outbox_lease", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        if add:
            batch.create_foreign_key(
                _SUBSCRIBER, "subscribers", ["subscriber_id"], ["id"], ondelete="CASCADE"
            )
            batch.create_foreign_key(_EDITION, "editions", ["edition_key"], ["key"])
        else:
            batch.drop_constraint(_SUBSCRIBER, type_="foreignkey")
            batch.drop_constraint(_EDITION, type_="foreignkey")
    op.create_index(
        "ix_outbox_lease", "outbox", ["lease_until"], sqlite_where=_LEASED, postgresql_where=_LEASED
    )
