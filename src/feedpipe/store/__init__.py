"""The store: SQLAlchemy 2 over SQLite (default) or PostgreSQL; rows never leave this package."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from feedpipe.store.engine import create_engine, migrate
from feedpipe.store.meta import MetaMixin
from feedpipe.store.outbox import OutboxMixin
from feedpipe.store.posts import PostsMixin
from feedpipe.store.sources import SourcesMixin
from feedpipe.store.subscribers import SubscribersMixin
from feedpipe.store.terms import TermsMixin


class Store(PostsMixin, TermsMixin, SourcesMixin, SubscribersMixin, OutboxMixin, MetaMixin):
    """One database, one mixin per record kind."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to `url` and migrate the schema to head."""
        engine = create_engine(url)
        try:
            migrate(engine)
        except Exception:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Store"]
