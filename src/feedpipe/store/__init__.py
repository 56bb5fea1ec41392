"""The store: SQLAlchemy 2 over SQLite (default) or PostgreSQL; rows never leave this package.

Callers type against the `Store` protocol; `open_store` (or `Store.open`) returns the SQL one.
"""

from __future__ import annotations

from feedpipe.store.engine import HEAD_REVISION, mask, safe_url, store_revision
from feedpipe.store.protocol import (
    HygieneStore,
    LeaderLock,
    LeasesStore,
    MetaStore,
    OutboxStore,
    PostsStore,
    RunsStore,
    SourcesStore,
    Store,
    SubscribersStore,
    TermsStore,
)
from feedpipe.store.sql import SqlStore


def open_store(url: str) -> Store:
    """Connect to `url` and migrate the schema to head."""
    return SqlStore.open(url)


__all__ = [
    "HEAD_REVISION",
    "HygieneStore",
    "LeaderLock",
    "LeasesStore",
    "MetaStore",
    "OutboxStore",
    "PostsStore",
    "RunsStore",
    "SourcesStore",
    "SqlStore",
    "Store",
    "SubscribersStore",
    "TermsStore",
    "mask",
    "open_store",
    "safe_url",
    "store_revision",
]
