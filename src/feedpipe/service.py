"""The one service object: wires settings, store, source and clock; CLI, worker and web use it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from feedpipe import __version__
from feedpipe.clock import Clock, SystemClock
from feedpipe.digests.service import DigestService
from feedpipe.feeds.build import BuildOptions, build_feeds
from feedpipe.feeds.render import FeedContext
from feedpipe.model import BuildReport, SyncReport
from feedpipe.settings import Settings
from feedpipe.source import Source, open_source
from feedpipe.store import Store
from feedpipe.subscriptions.service import SubscriptionService
from feedpipe.sync.run import run_sync

if TYPE_CHECKING:
    from feedpipe.outbox.service import OutboxService


@dataclass
class Feedpipe:
    """feedpipe's one service: sync and build here; subscribers and digests in `digests`;
    delivery in `outbox`. The CLI, the worker and the web are shells over it."""

    settings: Settings
    store: Store
    source: Source
    clock: Clock

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Feedpipe:
        """The one place where parts are wired together."""
        store = Store.open(settings.store.url)
        try:
            source = open_source(settings)
        except BaseException:
            store.close()
            raise
        return cls(settings, store, source, clock or SystemClock())

    def sync(self) -> SyncReport:
        return run_sync(self.source, self.store, self.clock.now, self.settings.site.post_url)

    def build(self, *, sync: bool = True, full: bool = False) -> BuildReport:
        sync_report = self.sync() if sync else None
        ctx = FeedContext.from_settings(self.settings, f"feedpipe {__version__}")
        opts = BuildOptions.from_settings(self.settings.feeds, ctx)
        report = build_feeds(self.store, opts, self.clock.now(), full=full)
        return replace(report, sync=sync_report)

    @cached_property
    def digests(self) -> DigestService:
        """Subscribers and digest planning."""
        return DigestService(self.settings, self.store, self.clock)

    @cached_property
    def subscriptions(self) -> SubscriptionService:
        """Every subscriber status change and link (the one the digests' recipients use)."""
        return self.digests.subscriptions

    @cached_property
    def outbox(self) -> OutboxService:
        """The durable outbox: fill, send, inspect (imported here: it loads the mail transports)."""
        from feedpipe.outbox.service import OutboxService

        return OutboxService(self.settings, self.store, self.clock, self.digests)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Feedpipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
