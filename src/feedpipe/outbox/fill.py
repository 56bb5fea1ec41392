"""The fill step: plan what is due page by page, render each new edition once, write every row."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from feedpipe.model import (
    Advance,
    FillReport,
    MessageKind,
    NewEdition,
    NewMessage,
    OutboxFill,
    Outcome,
    Recipient,
    Subscriber,
)
from feedpipe.outbox.policy import message_ids

if TYPE_CHECKING:  # the renderer (Jinja2) is built only when a fill plans
    from feedpipe.digests.model import PlannedEdition
    from feedpipe.digests.service import DigestService, RunPlan
    from feedpipe.emails.render import EmailRenderer
    from feedpipe.store import Store


def new_edition(renderer: EmailRenderer, edition: PlannedEdition, now: datetime) -> NewEdition:
    """Render an edition once into the row that stores it."""
    rendered = renderer.render_edition(edition.content)
    post_ids = tuple(p.id for s in edition.content.sections for p in s.posts)
    return NewEdition(edition.key, rendered.subject, post_ids, rendered.template.dump(), now)


def new_messages(
    edition_key: str,
    recipients: Sequence[Recipient],
    from_address: str,
    advances: Mapping[int, Advance] | None = None,
) -> list[NewMessage]:
    """One row per recipient; with the plan's `advances`, each carries the watermark it rolls
    back to and the deadline after which it is merged into the next digest instead."""
    out = []
    mid = message_ids(edition_key, from_address)
    digest, get = MessageKind.DIGEST, (advances or {}).get
    for r in recipients:
        advance = get(r.subscriber_id)
        if advance is None:
            out.append(NewMessage(edition_key, r, mid(r.subscriber_id)))
        else:
            since, deadline = advance.since, advance.deadline
            out.append(NewMessage(edition_key, r, mid(r.subscriber_id), digest, since, deadline))
    return out


# Subscribers per fill transaction: memory and the time the write lock is held stay bounded
# (~1 s a page on SQLite); fewer commits cost less (a SQLite commit checkpoints the WAL: 20
# pages of 5,000 took 1.4 s of commits per 100k rows here, 5 pages of 20,000 0.7 s).
FILL_PAGE = 20_000


class PageFill:
    """One fill, page by page: `make` turns a page of subscribers into its rows; the plan, the
    editions rendered and the keys known to be stored are shared between pages.

    Editions already stored are not rendered again (an edition's key includes the renderer's
    fingerprint: after a template or setting change the same posts make a new edition;
    messages already queued keep theirs). `make` may run again on the same page (the store
    retries a page that met a lock): only `committed` records what was written."""

    def __init__(
        self,
        digests: DigestService,
        renderer: Callable[[], EmailRenderer],
        now: datetime,
        stored_keys: Callable[[Sequence[str]], set[str]],
    ) -> None:
        self.digests = digests
        self.renderer = renderer
        self.now = now
        self.stored_keys = stored_keys
        self.sender = digests.settings.email.from_address
        self.run: RunPlan | None = None  # made at the first page (renderer: at the first edition)
        self.stored: set[str] = set()  # edition keys in the store
        self.rendered: dict[str, NewEdition] = {}  # rendered, not yet committed

    def make(self, subs: Sequence[Subscriber], suppressed: frozenset[int]) -> OutboxFill:
        """The editions, rows and moves of one page of active subscribers; those whose address
        is suppressed (checked again before every send) move on without a message."""
        if self.run is None:
            self.run = self.digests.run(self.now, lambda: self.renderer().fingerprint())
        plan = self.run.page(subs)
        sendable = [s for s in subs if s.id not in suppressed] if suppressed else subs
        recipients = self.digests.page_recipients(plan, sendable)
        editions = self._editions(plan.editions)
        messages = tuple(
            m
            for e in plan.editions
            for m in new_messages(e.key, recipients.get(e.key, ()), self.sender, plan.advances)
        )
        return OutboxFill(plan.now, editions, messages, plan.advances, plan.next_due)

    def committed(self, written: OutboxFill) -> None:
        """A page's transaction committed: its editions are stored."""
        for edition in written.editions:
            self.stored.add(edition.key)
            self.rendered.pop(edition.key, None)

    def _editions(self, planned: Sequence[PlannedEdition]) -> tuple[NewEdition, ...]:
        """The page's editions not stored yet, each rendered once (by the first page using it)."""
        known = self.stored
        unknown = [e.key for e in planned if e.key not in known and e.key not in self.rendered]
        if unknown:
            self.stored |= self.stored_keys(unknown)
        for edition in planned:
            if edition.key not in self.stored and edition.key not in self.rendered:
                self.rendered[edition.key] = new_edition(self.renderer(), edition, self.now)
        return tuple(self.rendered[e.key] for e in planned if e.key not in self.stored)


@contextmanager
def without_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection while the pages run: each page's ~100,000 objects live until
    it commits, and the collector scanned them again and again (a quarter of reading and
    signing a page); a page leaves almost no cycles behind (78 objects after 200,000
    subscribers, measured), and the collector runs again when the fill ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def fill(
    digests: DigestService, renderer: Callable[[], EmailRenderer], now: datetime
) -> FillReport:
    """Plan, render and write, one transaction (under the fill lock) per page of subscribers
    due by `now` (their next_due_at; those not due are not read), each writing its rows and
    moving its watermarks together.

    A crash before a page's commit leaves its watermarks where they were (planned again next
    time); after it, every message of the page is in the outbox. Never planned twice: each
    page is read under the lock that writes it, so concurrent fills take turns page by page.
    """
    store = digests.store
    digests.secret()  # may write the token key: before the fill takes the write lock
    expired = store.expire_outbox(now)  # late digests first: their posts are new again
    pages = PageFill(digests, renderer, now, store.stored_edition_keys)
    outcomes: Counter[Outcome] = Counter()
    editions = queued = 0
    with without_cycle_collection():
        for after, until in store.due_ranges(now, FILL_PAGE):
            for written, added_editions, added in _range_pages(store, pages, after, until):
                if written is not None:
                    pages.committed(written)
                    outcomes.update(a.outcome for a in written.advances.values())
                editions, queued = editions + added_editions, queued + added
    return FillReport(
        due=outcomes[Outcome.SENT] + outcomes[Outcome.EMPTY],
        editions=editions,
        queued=queued,
        held=outcomes[Outcome.HELD],
        late=outcomes[Outcome.LATE],
        expired=expired,
    )


def _range_pages(
    store: Store, pages: PageFill, after: int, until: int
) -> Iterator[tuple[OutboxFill | None, int, int]]:
    """The pages of one id range of due subscribers (one, unless more became due since the
    range was read), each written when it is yielded."""
    while page := store.fill_outbox_page(after, FILL_PAGE, pages.make, until, pages.now):
        written, added_editions, added, after = page
        yield written, added_editions, added
        if after == until:
            return
