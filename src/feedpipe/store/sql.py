"""SqlStore: the Store protocol over SQLAlchemy 2 (SQLite or PostgreSQL), one mixin per kind."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from feedpipe.store.engine import DEFAULT_BUSY_TIMEOUT, create_engine, migrate
from feedpipe.store.hygiene import HygieneMixin
from feedpipe.store.intake import IntakeMixin
from feedpipe.store.leases import LeasesMixin
from feedpipe.store.outbox import OutboxMixin
from feedpipe.store.posts import PostsMixin
from feedpipe.store.readers import ReadersMixin
from feedpipe.store.retract import RetractMixin
from feedpipe.store.runs import RunsMixin
from feedpipe.store.sources import SourcesMixin
from feedpipe.store.subscribers import SubscribersMixin
from feedpipe.store.terms import TermsMixin
from feedpipe.store.websub import WebsubMixin
from feedpipe.store.wrap import wrap_errors


@wrap_errors
class SqlStore(
    PostsMixin,
    TermsMixin,
    SourcesMixin,
    SubscribersMixin,
    OutboxMixin,
    RunsMixin,
    LeasesMixin,
    WebsubMixin,
    RetractMixin,
    ReadersMixin,
    HygieneMixin,
    IntakeMixin,
):
    """One database; every public method raises StoreError instead of SQLAlchemy's errors, and
    waits out another process's lock for up to `busy_timeout` seconds (wrap.py)."""

    def __init__(self, engine: Engine, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.engine = engine
        self.busy_timeout = busy_timeout

    @classmethod
    def open(cls, url: str, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> SqlStore:
        """Connect to `url` and migrate the schema to head."""
        engine = create_engine(url, busy_timeout)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, busy_timeout)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def masked_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def opener(self) -> StoreOpener | None:
        """Opens another handle on this database in a worker process (None: in-memory)."""
        if self.dialect == "sqlite" and self.database_path() is None:
            return None
        return StoreOpener(self.engine.url.render_as_string(hide_password=False), self.busy_timeout)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class StoreOpener:
    """Picklable: opens an already migrated database (worker processes of a feed build)."""

    url: str
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT

    def __repr__(self) -> str:  # the URL carries the password
        return "StoreOpener(…)"

    def __call__(self) -> SqlStore:
        return SqlStore(create_engine(self.url, self.busy_timeout), self.busy_timeout)
