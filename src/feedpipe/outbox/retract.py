"""Retracted posts leave queued digests: re-render the editions that held them, or cancel.

A post whose file disappeared or that became a draft again must not reach an inbox. Every
digest row that no dispatcher holds yet (queued or retry) whose edition lists such a post is
moved to the edition of the same subscriber without it — the section layout computed again from
the posts left, rendered once per layout, a new Message-ID — and a row whose edition is left
empty is cancelled. Watermarks do not move: the posts left were already planned for these
rows, nothing is planned again, so nothing is lost or sent twice. Rows already claimed
(`sending`) may be on the wire and are left alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from feedpipe.digests.model import PlannedEdition
from feedpipe.digests.plan import Layout, edition_content, layout_key, section_layout
from feedpipe.model import DigestPost, NewEdition
from feedpipe.model.retract import QueuedDigest, Requeue, RetractReport
from feedpipe.outbox.fill import new_edition
from feedpipe.outbox.policy import message_id

if TYPE_CHECKING:
    from feedpipe.emails.render import EmailRenderer
    from feedpipe.store import Store


def retracted(posts: dict[int, DigestPost], ids: set[int]) -> set[int]:
    """Of `ids`, the posts that may no longer go out: removed, drafts, or gone from the store."""
    return {i for i in ids if i not in posts or posts[i].removed or posts[i].draft}


def new_layouts(
    hit: list[QueuedDigest],
    posts: dict[int, DigestPost],
    gone: set[int],
    categories: dict[int, tuple[str, ...]],
) -> dict[int, Layout]:
    """Each affected row's layout without the retracted posts (empty: cancel it)."""
    out = {}
    for q in hit:
        kept = [posts[i] for i in q.post_ids if i not in gone]
        out[q.outbox_id] = section_layout(categories.get(q.subscriber_id, ()), kept)
    return out


def drop_retracted(
    store: Store, renderer: Callable[[], EmailRenderer], sender: str, now: datetime
) -> RetractReport:
    """Move every queued digest off the posts retracted since it was filled (see module doc)."""
    queued = store.queued_digests()
    ids = {i for q in queued for i in q.post_ids}
    posts = {p.id: p for p in store.digest_posts_by_ids(sorted(ids))} if ids else {}
    gone = retracted(posts, ids)
    hit = [q for q in queued if gone.intersection(q.post_ids)]
    if not hit:
        return RetractReport()
    subs = {q.subscriber_id for q in hit}
    categories = {s.id: s.categories for s in store.subscribers() if s.id in subs}
    layouts = new_layouts(hit, posts, gone, categories)
    render_key = renderer().fingerprint()
    by_key: dict[str, list[QueuedDigest]] = defaultdict(list)
    plans: dict[str, Layout] = {}
    for q in hit:
        layout = layouts[q.outbox_id]
        if layout:
            key = layout_key(layout, render_key)
            by_key[key].append(q)
            plans[key] = layout
    new = _render(store, renderer, plans, by_key, now)
    moves = [
        Requeue(q.outbox_id, q.subscriber_id, key, message_id(key, q.subscriber_id, sender))
        for key, rows in by_key.items()
        for q in rows
    ]
    cancel = [q.outbox_id for q in hit if not layouts[q.outbox_id]]
    moved, cancelled = store.requeue_digests(new, moves, cancel, now)
    found = tuple(sorted(gone & {i for q in hit for i in q.post_ids}))
    return RetractReport(found, moved, cancelled, len(new))


def _render(
    store: Store,
    renderer: Callable[[], EmailRenderer],
    plans: dict[str, Layout],
    by_key: dict[str, list[QueuedDigest]],
    now: datetime,
) -> list[NewEdition]:
    """The editions not stored yet, each rendered once."""
    stored = store.stored_edition_keys(sorted(plans))
    fresh = {k: v for k, v in plans.items() if k not in stored}
    if not fresh:
        return []
    wanted = sorted({i for layout in fresh.values() for _, ids in layout for i in ids})
    full = store.posts_by_ids(wanted)
    render_key = renderer().fingerprint()
    return [
        new_edition(
            renderer(),
            PlannedEdition(
                edition_content(layout, full, render_key),
                tuple(q.subscriber_id for q in by_key[key]),
            ),
            now,
        )
        for key, layout in fresh.items()
    ]
