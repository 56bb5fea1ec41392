"""Post store: posts, terms, post_terms, source documents and entries, dirty feeds, meta."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from feedpipe.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("guid", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(300), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("content_html", sa.Text, nullable=False),
        sa.Column("published_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime),
        sa.Column("author", sa.Text),
        sa.Column("image", sa.Text),
        sa.Column("image_alt", sa.Text),
        sa.Column("reading_time", sa.Integer),
        sa.Column("draft", sa.Boolean, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("first_seen_at", UTCDateTime, nullable=False),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sa.Column("removed_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_posts"),
        sa.UniqueConstraint("guid", name="uq_posts_guid"),
        sa.UniqueConstraint("slug", name="uq_posts_slug"),
    )
    op.create_index("ix_posts_visible", "posts", ["removed_at", "draft", "published_at"])
    op.create_index("ix_posts_first_seen_at", "posts", ["first_seen_at"])
    op.create_table(
        "terms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("slug", sa.String(300), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_terms"),
        sa.UniqueConstraint("kind", "key", name="uq_terms_kind_key"),
        sa.UniqueConstraint("kind", "slug", name="uq_terms_kind_slug"),
    )
    op.create_table(
        "post_terms",
        sa.Column("post_id", sa.Integer, nullable=False),
        sa.Column("term_id", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("post_id", "term_id", name="pk_post_terms"),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_post_terms_post_id_posts", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["term_id"], ["terms.id"], name="fk_post_terms_term_id_terms", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_post_terms_term_id", "post_terms", ["term_id"])
    op.create_table(
        "source_docs",
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("skips", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_source_docs"),
    )
    op.create_table(
        "source_entries",
        sa.Column("key", sa.String(1100), nullable=False),
        sa.Column("doc_key", sa.String(1000), nullable=False),
        sa.Column("post_id", sa.Integer, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_source_entries"),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_source_entries_post_id_posts", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_source_entries_doc_key", "source_entries", ["doc_key"])
    op.create_table(
        "dirty_feeds",
        sa.Column("feed_key", sa.String(400), nullable=False),
        sa.PrimaryKeyConstraint("feed_key", name="pk_dirty_feeds"),
    )


def downgrade() -> None:
    for table in ("dirty_feeds", "source_entries", "source_docs", "post_terms", "terms", "posts"):
        op.drop_table(table)
    op.drop_table("meta")
