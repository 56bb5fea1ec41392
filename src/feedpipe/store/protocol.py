"""What the rest of feedpipe may ask of the store: one protocol per record kind, and `Store`.

Every method raises StoreError (from the driver's error) when the database fails; domain
errors it raises on purpose (DuplicateSubscriberError) are documented on the method.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

from feedpipe.model import (
    Action,
    Claim,
    Contact,
    Decision,
    DigestPost,
    DocState,
    EntryLink,
    Failure,
    FailureGroup,
    FeedSpec,
    Frequency,
    MessageKind,
    NewEdition,
    NewSubscriber,
    OutboxFill,
    OutboxState,
    Post,
    PostRef,
    Preferences,
    RecordReport,
    RunRecord,
    Schedule,
    SentEdition,
    Subscriber,
    SubscriberStatus,
    SyncChanges,
    Term,
    TermKind,
)
from feedpipe.model.hygiene import (
    Effect,
    InboundRecord,
    InboundStatus,
    MessageRef,
    Rates,
    SoftLimit,
    Suppression,
    SuppressionReason,
)
from feedpipe.model.intake import IntakeKind, IntakeRequest
from feedpipe.model.readers import ReaderRow, ReaderTally
from feedpipe.model.retract import QueuedDigest, Requeue
from feedpipe.model.websub import HubSubscription, PublishState

T = TypeVar("T")


class PostsStore(Protocol):
    """Posts, their terms and the feeds waiting for a rebuild."""

    def post_refs_of(self, slugs: Sequence[str], ids: Sequence[int]) -> dict[str, PostRef]:
        """Identity of the posts with these slugs or ids, by slug."""

    def apply_sync(
        self, changes: SyncChanges, now: datetime, url_for: Callable[[str], str]
    ) -> None:
        """Write one sync's decisions atomically and mark the feeds they touch dirty."""

    def post_count(self) -> int:
        """Posts that are not removed."""

    def visible_post_ids(self, spec: FeedSpec, limit: int, now: datetime) -> list[int]:
        """Ids of the newest `limit` visible posts of a feed, newest first (ties by id)."""

    def visible_count(self, spec: FeedSpec, now: datetime, before: datetime) -> tuple[int, int]:
        """How many visible posts a feed has: in all, and published before `before`."""

    def changed_from(self) -> str | None:
        """The oldest publication time (fixed-width UTC text) of a post written or removed
        since the last build, "" for none, None when not known (from then on it is kept)."""

    def settle_changes(self, seen: str | None) -> None:
        """A build has taken in every change up to `seen` (what changed_from returned)."""

    def posts_by_ids(self, ids: Sequence[int]) -> dict[int, Post]: ...

    def feed_terms(self, now: datetime, kinds: Sequence[TermKind]) -> list[Term]:
        """Terms that have at least one visible post, ordered by kind then slug."""

    def newly_due_feed_keys(self, since: datetime, now: datetime) -> set[str]:
        """Feeds of posts whose publication time fell in (since, now]: future posts come due."""

    def retractions(self, since: datetime, until: datetime) -> list[tuple[str, datetime, set[str]]]:
        """Posts that left their feeds in (since, until] (removed, or drafts again after they
        were published): (guid, when, feed keys), newest first; for RFC 6721 tombstones."""

    def dirty_feed_keys(self) -> set[str]: ...

    def clear_dirty(self, keys: Iterable[str]) -> None: ...


class TermsStore(Protocol):
    """Categories and tags."""

    def terms(self, kind: TermKind) -> list[Term]: ...


class SourcesStore(Protocol):
    """What the store remembers of the source, so unchanged documents are not parsed again."""

    def source_docs(self, keys: Sequence[str] | None = None) -> dict[str, DocState]:
        """The states of the documents `keys` (None: every document)."""

    def source_stats(self, folders: Collection[str] | None = None) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) by key of the stored documents in the top `folders` ("": the files
        at the root; None: every document): what a sync compares a scan to."""

    def source_docs_summary(self) -> tuple[int, dict[str, DocState]]:
        """(documents stored clean: one post, nothing skipped or warned; the others' states by
        key): what a sync that parses nothing reports, without reading every row."""

    def source_links_of(
        self, doc_keys: Sequence[str] = (), post_ids: Sequence[int] = ()
    ) -> dict[str, EntryLink]:
        """Links of the given documents and of the given posts (not the whole table)."""

    def touch_docs(self, docs: list[tuple[str, int, int]]) -> None:
        """Record a new stat (key, size, mtime_ns) for documents whose content did not change."""


class SubscribersStore(Protocol):
    """Digest subscribers and the light post view the digest planner reads."""

    def add_subscriber(self, new: NewSubscriber) -> Subscriber:
        """Store one subscriber; DuplicateSubscriberError when the address is taken."""

    def import_subscribers(self, rows: Sequence[NewSubscriber]) -> list[int]:
        """Insert many in one transaction; return the indexes of `rows` skipped as duplicates."""

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None: ...

    def subscriber_by_email(self, email: str) -> Subscriber | None: ...

    def subscribers_by_ids(self, ids: Sequence[int]) -> dict[int, Subscriber]: ...

    def subscribers(
        self,
        status: SubscriberStatus | None = None,
        category: str | None = None,
        frequency: Frequency | None = None,
    ) -> list[Subscriber]:
        """Subscribers by id; `category` (a term key) matches those who chose it or everything."""

    def schedule_counts(self, status: SubscriberStatus) -> list[tuple[Schedule, datetime, int]]:
        """(schedule, cursor, how many) for each distinct schedule and cursor among the
        subscribers in `status`: one grouped read, not every subscriber (`feedpipe status`)."""

    def subscriber_page(
        self, after: int, limit: int, status: SubscriberStatus | None = None
    ) -> tuple[list[Subscriber], int | None]:
        """The subscribers in `status` among the next `limit` ids above `after`, and the last
        of those ids (where the next page starts; None: none is left). Keyset pages."""

    def watermark_floor(self, status: SubscriberStatus | None = None) -> datetime | None:
        """The oldest watermark of the subscribers in `status` (None: there are none)."""

    def subscriber_contacts(self, ids: Sequence[int]) -> dict[int, Contact]:
        """Email and names by id."""

    def remove_subscriber(self, subscriber_id: int) -> bool: ...

    def move_subscriber(
        self, subscriber_id: int, action: Action, at: datetime
    ) -> tuple[SubscriberStatus, SubscriberStatus] | None:
        """Apply `action` by the transition table, atomically: (old, new) status, None when
        there is no such subscriber; InvalidTransitionError (nothing changes) when not allowed."""

    def advance_watermarks(self, watermarks: Mapping[int, datetime]) -> None: ...

    def digest_posts(self, since: datetime, until: datetime) -> list[DigestPost]:
        """Posts that may have become available in (since, until], with category keys."""

    def set_subscriber_preferences(self, subscriber_id: int, prefs: Preferences) -> None:
        """Replace a subscriber's categories (term keys, chosen order), schedule and given
        name."""


class OutboxStore(Protocol):
    """Editions and outbox rows: fill, claim, record, inspect."""

    def fill_outbox(self, make: Callable[[], OutboxFill]) -> tuple[OutboxFill, int, int]:
        """Call `make` under the fill lock, then write its editions, messages and watermarks."""

    def fill_outbox_page(
        self,
        after: int,
        limit: int,
        make: Callable[[Sequence[Subscriber], frozenset[int]], OutboxFill],
        until: int | None = None,
        due: datetime | None = None,
    ) -> tuple[OutboxFill | None, int, int, int] | None:
        """One page of a fill in one transaction under the fill lock: the next `limit`
        subscribers after id `after` (up to `until`; with `due`, those due by then), the
        active ones and the suppressed ids among them → `make` → editions, messages,
        watermarks and next_due_at written. (fill or None, editions added, messages added,
        last id read); None when no subscriber is left."""

    def due_ranges(self, now: datetime, size: int) -> list[tuple[int, int]]:
        """(after, until] id ranges of `size` active subscribers due by `now` each (next_due_at
        at most `now`, or not known), by id, read through an index."""

    def expire_outbox(self, now: datetime) -> int:
        """Cancel digests past their deadline and give their posts back to the next digest."""

    def stored_edition_keys(self, keys: Sequence[str]) -> set[str]: ...

    def edition_templates(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Serialised MIME templates by edition key."""

    def claim_outbox(self, owner: str, now: datetime, lease: timedelta, limit: int) -> Claim:
        """Lease up to `limit` due messages to `owner`; stopped subscribers' rows are cancelled."""

    def renew_outbox(
        self, owner: str, ids: Sequence[int], now: datetime, lease: timedelta
    ) -> set[int]:
        """Extend `owner`'s lease on these rows; the ids it still holds."""

    def record_outbox(
        self,
        owner: str,
        decisions: Sequence[Decision],
        now: datetime,
        bounce_limit: int,
        taken: Sequence[int] = (),
    ) -> RecordReport:
        """Mark `taken` rows sending, record results (one transaction), apply the bounce limit."""

    def update_meta(self, key: str, change: Callable[[str | None], tuple[str, T]]) -> T:
        """Read-modify-write one meta value atomically across processes."""

    def outbox_counts(self) -> dict[OutboxState, int]: ...

    def outbox_failures(self, limit: int = 10) -> list[Failure]:
        """The most recent failing messages (failed, or waiting to retry after a failed
        attempt), newest first, each with its last reply."""

    def outbox_failure_groups(self, limit: int = 10) -> list[FailureGroup]:
        """Failing messages grouped by state and last reply, the largest groups first."""

    def retry_failed_outbox(self, now: datetime) -> int:
        """Queue every failed message again with a fresh attempt count; returns how many."""

    def outbox_next_due(self) -> datetime | None:
        """The earliest time an unfinished message becomes claimable (None: nothing left)."""

    def outbox_messages(self, subscriber_id: int) -> list[tuple[str, OutboxState, int, str]]:
        """(edition key, state, attempts, Message-ID) of a subscriber's messages, oldest first."""

    def outbox_next_attempts(self, ids: Sequence[int]) -> dict[int, datetime | None]: ...

    def release_outbox(self, owner_prefix: str, now: datetime) -> int:
        """Hand back the rows a stopping process still holds; returns how many."""

    def cancel_outbox(self, subscriber_id: int, now: datetime) -> int:
        """Queued and retrying messages of a subscriber become cancelled (in flight ones finish)."""

    def sent_editions(
        self,
        limit: int,
        key: str | None = None,
        planned: tuple[datetime, datetime] | None = None,
    ) -> list[SentEdition]:
        """Editions with at least one digest accepted by the server, newest send first;
        `planned`: only those rendered in [start, end)."""

    def subscriber_failures(self, subscriber_id: int) -> int:
        """Consecutive permanent failures counted toward the bounce limit."""

    def confirmations_since(self, since: datetime, domain: str) -> tuple[int, int]:
        """Confirmation messages queued since `since`: in all, and to addresses at `domain`."""


class MetaStore(Protocol):
    """Small named values (last build time, settings fingerprint, token secret)."""

    def get_meta(self, key: str) -> str | None: ...

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every meta value whose key starts with `prefix`, by key."""

    def set_meta(self, key: str, value: str) -> None:
        """Insert or replace one value atomically."""

    def meta_setdefault(self, key: str, make: str | None = None) -> str:
        """The meta value under `key`; stores `make` (or a random secret) first if absent."""


class RunsStore(Protocol):
    """The last run of each worker job."""

    def put_run(self, run: RunRecord) -> None:
        """Store `run` as the last run of its job."""

    def last_runs(self) -> dict[str, RunRecord]:
        """The last run of each job, by job name."""


class LeaderLock(Protocol):
    """A lock at most one worker holds at a time, released when its holder dies."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; whether we hold it now."""

    def ping(self) -> None:
        """Raise StoreError unless the lock is still held."""

    def release(self) -> None: ...

    def close(self) -> None: ...


class LeasesStore(Protocol):
    """What worker leadership needs from the store."""

    def leader_lock(self, identity: str) -> LeaderLock | None:
        """A leader lock for `identity`; None where the store has none (SQLite)."""

    def leader_lock_holder(self) -> str | None:
        """Who holds the leader lock now (None: nobody, or no such lock)."""

    def database_path(self) -> Path | None:
        """The database file (SQLite), for a lock file beside it; None otherwise."""

    def set_leader(self, identity: str, since: datetime) -> None:
        """Record who became the leader and when."""

    def last_leader(self) -> dict[str, Any]:
        """The last leader recorded ({} when none was)."""


class WebsubStore(Protocol):
    """The WebSub hub's subscriptions and each hub's last publish."""

    def save_hub_subscription(self, sub: HubSubscription) -> None:
        """Insert the subscription, or renew it (lease, secret) when it exists."""

    def remove_hub_subscription(self, topic: str, callback: str) -> bool:
        """Forget one subscription; False if there was none."""

    def hub_subscriptions(self, topic: str, now: datetime) -> list[HubSubscription]:
        """The subscriptions of `topic` whose lease has not run out at `now`."""

    def expire_hub_subscriptions(self, now: datetime) -> int:
        """Delete every subscription whose lease ran out by `now`; how many."""

    def put_publish_state(self, state: PublishState) -> None:
        """Record the last publish to `state.hub`."""

    def publish_states(self) -> dict[str, PublishState]:
        """The last publish to each hub, by hub URL."""


class RetractStore(Protocol):
    """Queued digests that carry retracted posts: found, re-rendered or cancelled."""

    def queued_digests(self) -> list[QueuedDigest]:
        """Digest rows that no dispatcher holds (queued or retry), with their edition's posts."""

    def digest_posts_by_ids(self, ids: Sequence[int]) -> list[DigestPost]:
        """The planner's view of these posts (removed ones too)."""

    def requeue_digests(
        self,
        new: Sequence[NewEdition],
        moves: Sequence[Requeue],
        cancel: Sequence[int],
        now: datetime,
    ) -> tuple[int, int]:
        """Store `new`, move rows to their new edition, cancel rows; still-pending rows only."""


class ReadersStore(Protocol):
    """Feed reader tallies from `feedpipe serve` (aggregated, no addresses)."""

    def add_reader_tallies(self, tallies: Sequence[ReaderTally]) -> None:
        """Add the counts to each (feed, client) row; the latest subscriber count wins."""

    def reader_rows(self) -> list[ReaderRow]:
        """Per feed and aggregator: the latest subscriber count, last fetch and the counts."""


class HygieneStore(Protocol):
    """The suppression list, delivery events (bounces, complaints) and rates, inbound mail."""

    def suppress(self, entry: Suppression, action: Action | None = None) -> bool:
        """Add `entry` (a listed address keeps its first entry); with `action`, the address's
        subscriber moves by the table and their queue is cancelled. True when newly listed."""

    def unsuppress(self, email: str) -> bool:
        """Take an address off the list; whether it was on it."""

    def suppressions(self, reason: SuppressionReason | None = None) -> list[Suppression]:
        """The list, newest first."""

    def suppressed(self, emails: Sequence[str]) -> dict[str, Suppression]:
        """The entries of those of `emails` that are suppressed, by address key."""

    def soft_bounces(self, subscriber_id: int, since: datetime) -> int:
        """Soft bounces of a subscriber since `since` (a delivery deletes them)."""

    def rates_since(self, since: datetime, label: str) -> Rates:
        """Messages sent since `since`, and the bounces and complaints that came in since."""

    def rates_by_edition(self, limit: int) -> list[Rates]:
        """Rates of the `limit` editions sent last, newest first."""

    def message_refs(
        self, outbox_ids: Sequence[int] = (), message_ids: Sequence[str] = ()
    ) -> list[MessageRef]:
        """The outbox messages with these ids or Message-IDs."""

    def last_sent_to(self, recipient: str) -> MessageRef | None:
        """The newest message sent to an address."""

    def process_inbound(
        self, record: InboundRecord, effects: Sequence[Effect], soft: SoftLimit
    ) -> list[str] | None:
        """Record an inbound message and its effects atomically, once (None: seen before);
        returns the addresses the soft-bounce limit suppressed."""

    def inbound_seen(self, key: str) -> InboundRecord | None: ...

    def inbound_records(
        self, status: InboundStatus | None, limit: int = 100
    ) -> list[InboundRecord]:
        """Inbound messages, newest first (without their raw bytes)."""

    def inbound_counts(self) -> dict[InboundStatus, int]: ...


class IntakeStore(Protocol):
    """The web's durable intake: public-form requests stored before their reply, leased to
    the process that does their work (docs/web.md "Durable intake")."""

    def add_intake(
        self,
        kind: IntakeKind,
        payload: str,
        owner: str,
        now: datetime,
        until: datetime,
        cap: int,
    ) -> bool:
        """Store one request leased to `owner` until `until`, unless `cap` wait already
        (False). One short transaction whose work does not depend on the request's content."""

    def intake_owned(self, owner: str, limit: int) -> list[IntakeRequest]:
        """The oldest `limit` requests leased to `owner`, oldest first."""

    def intake_owners(self) -> dict[str, datetime]:
        """Every owner holding requests, with the latest end of its leases."""

    def renew_intake(self, owner: str, until: datetime) -> int:
        """Move the lease of every request `owner` holds to `until`; how many it holds."""

    def claim_intake(
        self, owner: str, until: datetime, now: datetime, gone: Sequence[str], limit: int
    ) -> int:
        """Lease to `owner` up to `limit` requests whose lease ended or whose owner is in
        `gone`, counting an attempt on each; how many were taken (each by one process)."""

    def finish_intake(self, request_id: int, owner: str) -> bool:
        """Delete a request whose work is done; False when `owner` no longer held it."""

    def intake_count(self) -> int:
        """Requests waiting (taken or not)."""

    def queued_since(self, subscriber_id: int, kind: MessageKind, since: datetime) -> bool:
        """Whether a message of `kind` to the subscriber was queued at or after `since`."""


class Store(
    IntakeStore,
    HygieneStore,
    PostsStore,
    TermsStore,
    SourcesStore,
    SubscribersStore,
    OutboxStore,
    MetaStore,
    RunsStore,
    LeasesStore,
    WebsubStore,
    RetractStore,
    ReadersStore,
    Protocol,
):
    """One database: every record kind, plus opening, describing and closing it."""

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to `url` and migrate the schema to head (the SQLAlchemy store)."""
        from feedpipe.store.sql import SqlStore

        return SqlStore.open(url)

    @property
    def masked_url(self) -> str:
        """The store's URL with any password replaced by ***."""

    def opener(self) -> Callable[[], Store] | None:
        """A picklable callable that opens another handle on this database (for worker
        processes); None when no other handle can see it (in-memory)."""

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(self, *exc: object) -> None: ...
