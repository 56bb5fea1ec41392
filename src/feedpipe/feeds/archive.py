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
    """A feed's documents: post ids newest first, for the subscription doc and each page.

    `first` leading (oldest, full) archive pages may be left out: pages[0] is then archive
    page first + 1. A build leaves out the pages it knows are unchanged since the last one.
    """

    current: tuple[int, ...]
    pages: tuple[tuple[int, ...], ...]  # pages[0] is archive page first + 1
    first: int = 0

    @property
    def count(self) -> int:
        """How many archive pages the feed has (left out or not)."""
        return self.first + len(self.pages)

    def paging(self, page: int, deleted: tuple[tuple[str, datetime], ...] = ()) -> Paging:
        """Links of one document: 0 is the subscription document (which carries `deleted`)."""
        if page == 0:
            return Paging(prev=self.newest_filled, deleted=deleted)
        return Paging(page, prev=page - 1, next=page + 1 if page < self.count else 0)

    @property
    def newest_filled(self) -> int:
        """The newest archive page that holds a post (0 when there is none)."""
        loaded = range(len(self.pages), 0, -1)
        return next((self.first + n for n in loaded if self.pages[n - 1]), self.first)

    def numbered(self) -> list[tuple[int, tuple[int, ...]]]:
        """(number, post ids) of every page that is not left out."""
        return list(enumerate(self.pages, start=self.first + 1))


def layout(
    ids_newest_first: Sequence[int], max_items: int, size: int | None, first: int = 0
) -> Layout:
    """Split a feed's visible posts (newest first, as the store orders them) into documents.

    `size` None turns archives off: only the subscription document exists. `first` > 0 says
    the ids leave out the feed's `first * size` oldest posts (its `first` oldest pages).
    """
    current = tuple(ids_newest_first[:max_items])
    older = list(ids_newest_first[max_items:])
    if size is None or not older:
        return Layout(current, (), 0)
    oldest_first = older[::-1]
    pages = [tuple(oldest_first[i : i + size][::-1]) for i in range(0, len(oldest_first), size)]
    if len(oldest_first) % size == 0:
        pages.append(())
    return Layout(current, tuple(pages), first)


def pages_to_skip(archived: int, unchanged: int, size: int) -> int:
    """How many oldest pages of a feed with `archived` posts beyond its subscription document
    need not be read again when its `unchanged` oldest posts are known to be as they were:
    the full pages among those, keeping the page of the newest archived post (and an empty
    newest page after it) loaded."""
    if archived <= 0:
        return 0
    return max(0, min(unchanged, archived - 1) // size)


def page_digest(versions: Sequence[tuple[int, str]], paging: Paging) -> str:
    """What an archive page's bytes depend on besides the build options: its posts' (id,
    content hash) and its links. Unchanged digest, unchanged file: the page is not rendered."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{paging.page}:{paging.prev}:{paging.next}".encode())
    for post_id, content_hash in versions:
        h.update(f"|{post_id}:{content_hash}".encode())
    return h.hexdigest()
