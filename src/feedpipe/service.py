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
    from feedpipe.mail.imap import PollReport
    from feedpipe.model import BuildReport, RunRecord, SyncReport
    from feedpipe.outbox.service import OutboxService
    from feedpipe.settings import Settings
    from feedpipe.source import Source
    from feedpipe.store import LeaderLock, Store
    from feedpipe.subscriptions.inbound import InboundProcessor
    from feedpipe.subscriptions.service import SubscriptionService


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

        return cls(settings, open_store(settings.store.url), clock or SystemClock())

    @cached_property
    def source(self) -> Source:
        """The configured source (its parser loads at the first sync, not for every command)."""
        from feedpipe.source import open_source

        return open_source(self.settings)

    def sync(self) -> SyncReport:
        from feedpipe.sync.run import run_sync

        return run_sync(self.source, self.store, self.clock.now, self.settings.site.post_url)

    def build(self, *, sync: bool = True, full: bool = False) -> BuildReport:
        from feedpipe import __version__
        from feedpipe.feeds.build import BuildOptions, build_feeds
        from feedpipe.feeds.render import FeedContext

        sync_report = self.sync() if sync else None
        ctx = FeedContext.from_settings(self.settings, f"feedpipe {__version__}")
        opts = BuildOptions.from_settings(self.settings.feeds, ctx)
        report = build_feeds(self.store, opts, self.clock.now(), full=full)
        return replace(report, sync=sync_report)

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
    def inbound(self) -> InboundProcessor:
        """Bounces, complaints, auto-replies and `mailto:` unsubscribes (stdin or IMAP)."""
        from feedpipe.subscriptions.inbound import InboundProcessor

        return InboundProcessor(self.settings, self.store, self.clock, self.subscriptions.links)

    def poll_inbound(self) -> PollReport:
        """Process what waits in the `[inbound]` IMAP folder; processed messages are moved."""
        from feedpipe.mail.imap import poll

        return poll(self.settings.inbound, lambda raw: self.inbound.process(raw).status)

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
