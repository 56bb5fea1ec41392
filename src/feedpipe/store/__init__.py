"""The store: SQLAlchemy 2 over SQLite (default) or PostgreSQL; rows never leave this package.

Callers type against the `Store` protocol; `open_store` (or `Store.open`) returns the SQL one.
"""

from __future__ import annotations

from feedpipe.store.engine import (
    DEFAULT_BUSY_TIMEOUT,
    HEAD_REVISION,
    mask,
    safe_url,
    store_revision,
)
from feedpipe.store.protocol import (
    HygieneStore,
    IntakeStore,
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
    WebsubStore,
)
from feedpipe.store.sql import SqlStore


def open_store(url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Store:
    """Connect to `url` and migrate the schema to head; writes wait up to `busy_timeout`
    seconds for another process's lock."""
    return SqlStore.open(url, busy_timeout)


__all__ = [
    "DEFAULT_BUSY_TIMEOUT",
    "HEAD_REVISION",
    "HygieneStore",
    "IntakeStore",
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
    "WebsubStore",
    "mask",
    "open_store",
    "safe_url",
    "store_revision",
]
