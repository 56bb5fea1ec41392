"""Tables of the post store (SQLAlchemy Core); later record kinds add their own modules."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from feedpipe.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("guid", String(200), nullable=False, unique=True),
    Column("slug", String(300), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("summary_html", Text),  # a Markdown summary's sanitised HTML (summary_format)
    Column("content_html", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime),
    Column("author", Text),
    Column("image", Text),
    Column("image_alt", Text),
    Column("reading_time", Integer),
    Column("draft", Boolean, nullable=False, default=False),
    Column("content_hash", String(64), nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    Index("ix_posts_visible", "removed_at", "draft", "published_at"),
    Index("ix_posts_first_seen_at", "first_seen_at"),
    # Retractions (every build): removed_at uses ix_posts_visible, drafts this one (an OR of two
    # index searches instead of reading every post, content included).
    Index("ix_posts_draft_changed", "draft", "changed_at"),
)

terms = Table(
    "terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("key", String(300), nullable=False),
    Column("slug", String(300), nullable=False),
    Column("name", Text, nullable=False),
    UniqueConstraint("kind", "key", name="uq_terms_kind_key"),
    UniqueConstraint("kind", "slug", name="uq_terms_kind_slug"),
)

post_terms = Table(
    "post_terms",
    metadata,
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("term_id", Integer, ForeignKey("terms.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_post_terms_term_id", "term_id"),
)

source_docs = Table(
    "source_docs",
    metadata,
    Column("key", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("skips", Text, nullable=False, default="[]"),
    # The documents with skips or warnings: migration 0019 makes it partial (WHERE skips !=
    # '[]') on both engines; declared without the dialect keywords (see ix_outbox_lease).
    Index("ix_source_docs_unclean", "key"),
)

source_entries = Table(
    "source_entries",
    metadata,
    Column("key", String(1100), primary_key=True),
    Column("doc_key", String(1000), nullable=False, index=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

dirty_feeds = Table(
    "dirty_feeds",
    metadata,
    Column("feed_key", String(400), primary_key=True),
)
