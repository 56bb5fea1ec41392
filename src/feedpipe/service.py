"""The one service object: wires settings, store, source and clock; CLI, worker and web use it.

Each stage is imported when first used (the feed renderers by a build, the digests and email
renderer by what plans or sends, the mail transports by a send), so that a command pays only
for what it runs: `feedpipe status` never loads Jinja2, a no-change build never loads lxml.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedpipe.clock import Clock, SystemClock

if TYPE_CHECKING:
    from feedpipe.digests.service import DigestService
    from feedpipe.model import BuildReport, RunRecord, SyncReport
    from feedpipe.model.readers import ReaderRow
    from feedpipe.model.websub import PublishState
    from feedpipe.outbox.service import OutboxService
    from feedpipe.settings import Settings
    from feedpipe.source import Source
    from feedpipe.store import LeaderLock, Store
    from feedpipe.subscriptions.service import SubscriptionService
    from feedpipe.websub.hub import Hub
    from feedpipe.websub.publish import Publisher, PublishReport


@dataclass
class Feedpipe:
    """feedpipe's one service: sync and build here; subscribers and digests in `digests`;
    delivery in `outbox`. The CLI, the worker and the web are shells over it."""

    settings: Settings
    store: Store
    clock: Clock

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> Feedpipe:
        """The one place where parts are wired together."""
        from feedpipe.store import open_store

        store = open_store(settings.store.url, settings.store.busy_timeout_seconds)
        return cls(settings, store, clock or SystemClock())

    @cached_property
    def source(self) -> Source:
        """The configured source (its parser loads at the first sync, not for every command)."""
        from feedpipe.source import open_source

        return open_source(self.settings)

    def sync(self) -> SyncReport:
        from feedpipe.sync.run import run_sync

        report = run_sync(self.source, self.store, self.clock.now, self.settings.site.post_url)
        if report.removed or report.updated or report.drafts:  # retracted posts leave digests
            self.outbox.drop_retracted()
        return report

    def build(self, *, sync: bool = True, full: bool = False) -> BuildReport:
        from feedpipe import __version__
        from feedpipe.feeds.build import BuildOptions, build_feeds
        from feedpipe.feeds.icons import site_images
        from feedpipe.feeds.render import FeedContext

        sync_report = self.sync() if sync else None
        ctx = FeedContext.from_settings(self.settings, f"feedpipe {__version__}")
        opts = BuildOptions.from_settings(self.settings.feeds, ctx, site_images(self.settings))
        report = build_feeds(self.store, opts, self.clock.now(), full=full)
        return replace(report, sync=sync_report)

    @cached_property
    def publisher(self) -> Publisher:
        """WebSub publish notifications to every configured hub (ours included)."""
        from feedpipe.websub.client import Retry
        from feedpipe.websub.publish import Publisher

        ws = self.settings.websub
        retry = Retry(ws.attempts, ws.backoff_seconds, ws.timeout_seconds)
        return Publisher(self.settings.websub_hubs, self.store, self.clock, retry)

    def changed_feed_urls(self, report: BuildReport) -> list[str]:
        """The feed URLs a build changed: what hubs are told of."""
        from feedpipe.websub.publish import feed_urls

        return feed_urls(report.written, self.settings.feeds_url)

    def publish(self, urls: list[str]) -> PublishReport:
        """Tell every hub that these feed URLs changed (retried, bounded; never raises for a
        hub's failure); each hub's last result is kept for `feedpipe status`."""
        return self.publisher.publish(urls)

    def publish_states(self) -> dict[str, PublishState]:
        """The last publish to each hub, by hub URL."""
        return self.store.publish_states()

    def hub(self) -> Hub:
        """The WebSub hub over this store ([websub] serve); the caller closes it."""
        from feedpipe.websub.hub import Hub

        return Hub(self.settings, self.store, self.clock)

    @cached_property
    def digests(self) -> DigestService:
        """Subscribers and digest planning."""
        from feedpipe.digests.service import DigestService

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

    # --- what the worker and `feedpipe status` ask (the shells never reach into the store) ---

    @property
    def store_url(self) -> str:
        """The store's URL, password masked."""
        return self.store.masked_url

    def post_count(self) -> int:
        """Posts in the store that are not removed."""
        return self.store.post_count()

    def reader_rows(self) -> list[ReaderRow]:
        """Feed readers counted by `feedpipe serve`, per feed and aggregator."""
        return self.store.reader_rows()

    def release_outbox(self, owner_prefix: str) -> int:
        """Hand back the outbox rows a stopping process still holds; returns how many."""
        return self.store.release_outbox(owner_prefix, self.clock.now())

    def put_run(self, run: RunRecord) -> None:
        """Record `run` as its job's last run."""
        self.store.put_run(run)

    def last_runs(self) -> dict[str, RunRecord]:
        """The last run of each worker job, by job name."""
        return self.store.last_runs()

    def leader_lock(self, identity: str) -> LeaderLock | None:
        """The store's leader lock for `identity` (PostgreSQL); None on SQLite."""
        return self.store.leader_lock(identity)

    def leader_lock_holder(self) -> str | None:
        """Who holds the store's leader lock now (PostgreSQL)."""
        return self.store.leader_lock_holder()

    def database_path(self) -> Path | None:
        """The SQLite database file (None for PostgreSQL and in-memory databases)."""
        return self.store.database_path()

    def set_leader(self, identity: str, since: datetime) -> None:
        """Record who became the leader and when."""
        self.store.set_leader(identity, since)

    def last_leader(self) -> dict[str, Any]:
        """The last leader recorded ({} when none was)."""
        return self.store.last_leader()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Feedpipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
