"""RFC 5005 archived feeds: which posts go in the subscription document and in each archive page.

The subscription document holds the newest `max_items` posts. Every older post goes to an
archive page of `size` posts, numbered from the oldest (page 1 holds the oldest `size`), so a
new post only moves the oldest post of the subscription document into the newest page: a page
that is full never changes membership again. When the newest page fills, an empty next page is
written at once, so the full page's `next-archive` link never has to change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from feedpipe.feeds.render import Paging


@dataclass(frozen=True, slots=True)
class Layout:
    """A feed's documents: post ids newest first, for the subscription doc and each page."""

    current: tuple[int, ...]
    pages: tuple[tuple[int, ...], ...]  # pages[0] is archive page 1 (the oldest posts)

    def paging(self, page: int, deleted: tuple[tuple[str, datetime], ...] = ()) -> Paging:
        """Links of one document: 0 is the subscription document (which carries `deleted`)."""
        if page == 0:
            return Paging(prev=self.newest_filled, deleted=deleted)
        return Paging(page, prev=page - 1, next=page + 1 if page < len(self.pages) else 0)

    @property
    def newest_filled(self) -> int:
        """The newest archive page that holds a post (0 when there is none)."""
        return next((n for n in range(len(self.pages), 0, -1) if self.pages[n - 1]), 0)

    def is_full(self, page: int, size: int) -> bool:
        """Whether archive page `page` has all its posts (and so never changes membership)."""
        return len(self.pages[page - 1]) == size


def layout(ids_newest_first: Sequence[int], max_items: int, size: int | None) -> Layout:
    """Split a feed's visible posts (newest first, as the store orders them) into documents.

    `size` None turns archives off: only the subscription document exists.
    """
    current = tuple(ids_newest_first[:max_items])
    older = list(ids_newest_first[max_items:])
    if size is None or not older:
        return Layout(current, ())
    oldest_first = older[::-1]
    pages = [tuple(oldest_first[i : i + size][::-1]) for i in range(0, len(oldest_first), size)]
    if len(oldest_first) % size == 0:
        pages.append(())
    return Layout(current, tuple(pages))


def page_digest(versions: Sequence[tuple[int, str]], paging: Paging) -> str:
    """What an archive page's bytes depend on besides the build options: its posts' (id,
    content hash) and its links. Unchanged digest, unchanged file: the page is not rendered."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{paging.page}:{paging.prev}:{paging.next}".encode())
    for post_id, content_hash in versions:
        h.update(f"|{post_id}:{content_hash}".encode())
    return h.hexdigest()
