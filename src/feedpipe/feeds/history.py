"""Render the RFC 5005 archive pages of many feeds at once: bulk-loaded posts, shared items.

Which pages changed is told from their digests (posts' content hashes from one light query
and their links); the pages to render are taken oldest posts first across all feeds, their
posts loaded in bulk a window ahead, and each post's item serialised once per format for
every page that lists it. A post's item is dropped as soon as the last page listing it is
written, so memory holds about one page span of posts, not the whole history.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from feedpipe.feeds.archive import Layout, page_digest
from feedpipe.feeds.formats import FORMATS, render_parts
from feedpipe.feeds.render import FeedContext, Fragments, Paging
from feedpipe.model import FeedSpec, Post
from feedpipe.settings import FeedFormat
from feedpipe.store import Store

LOAD_AHEAD = 500  # posts loaded per bulk query while walking the pages


@dataclass(frozen=True, slots=True)
class PageJob:
    """One archive page to render: its feed, number, posts (newest first) and links."""

    spec: FeedSpec
    number: int
    ids: tuple[int, ...]
    paging: Paging


@dataclass(frozen=True, slots=True)
class Plan:
    """The archive pages of a set of feeds: each feed's page digests, and what to render."""

    digests: dict[str, list[str]]
    jobs: list[PageJob]
    unchanged: int  # files of unchanged pages (skipped)


def plan_archives(
    store: Store,
    feeds: Sequence[tuple[FeedSpec, Layout, list[str]]],
    formats: Sequence[FeedFormat],
    exists: Callable[[str], bool],
) -> Plan:
    """Digest every archive page of `feeds` ((spec, layout, the digests stored last build));
    a page is to render when its digest changed or one of its files is missing. The pages a
    layout leaves out are unchanged, their files there (`left_out_missing` says otherwise):
    their stored digests stand."""
    archived = sorted({i for _, lay, _ in feeds for ids in lay.pages for i in ids})
    hashes = {r.id: r.content_hash for r in store.post_refs_of((), archived).values()}
    digests: dict[str, list[str]] = {}
    jobs: list[PageJob] = []
    unchanged = 0
    for spec, lay, old in feeds:
        found = digests[spec.key] = old[: lay.first]
        unchanged += lay.first * len(formats)
        for number, ids in lay.numbered():
            paging = lay.paging(number)
            digest = page_digest([(i, hashes[i]) for i in ids], paging)
            found.append(digest)
            same = number <= len(old) and old[number - 1] == digest
            if same and all(exists(FORMATS[f].path(spec, number)) for f in formats):
                unchanged += len(formats)
            else:
                jobs.append(PageJob(spec, number, ids, paging))
    return Plan(digests, jobs, unchanged)


def left_out_missing(
    spec: FeedSpec, lay: Layout, formats: Sequence[FeedFormat], exists: Callable[[str], bool]
) -> bool:
    """Whether a file of a page the layout left out is missing (then it must be loaded)."""
    paths = (FORMATS[f].path(spec, n) for n in range(1, lay.first + 1) for f in formats)
    return not all(exists(path) for path in paths)


def oldest_first(jobs: Sequence[PageJob], newest_first: Sequence[int]) -> list[PageJob]:
    """The pages ordered by their oldest post in `newest_first` (every visible post), so the
    pages that share posts are rendered close together."""
    rank = {post_id: r for r, post_id in enumerate(newest_first)}
    last = len(rank)
    return sorted(jobs, key=lambda j: -max((rank.get(i, last) for i in j.ids), default=-1))


def split_jobs(jobs: Sequence[PageJob], shares: int) -> list[list[PageJob]]:
    """Cut the ordered pages into `shares` runs of about as many posts each: a run's pages
    share most of their posts, so each post is loaded and serialised in about one worker."""
    total = sum(len(j.ids) for j in jobs)
    runs: list[list[PageJob]] = [[] for _ in range(shares)]
    seen = 0
    for job in jobs:
        runs[min(shares - 1, seen * shares // max(total, 1))].append(job)
        seen += len(job.ids)
    return [run for run in runs if run]


class _Window:
    """Posts and their items, loaded ahead in bulk and dropped after their last page."""

    def __init__(self, store: Store, jobs: Sequence[PageJob]) -> None:
        self.store = store
        self.jobs = jobs
        self.uses = Counter(i for job in jobs for i in job.ids)
        self.posts: dict[int, Post] = {}
        self.fragments = Fragments()
        self.light: set[int] = set()  # posts whose text is dropped (their items are kept)
        self._loaded_to = 0  # jobs[:_loaded_to] have their posts loaded (or already done)

    def posts_of(self, index: int) -> list[Post]:
        """The posts of jobs[index], loading the next jobs' posts in one query if needed."""
        if index >= self._loaded_to:
            wanted: set[int] = set()
            end = index
            while end < len(self.jobs) and (end == index or len(wanted) < LOAD_AHEAD):
                wanted.update(i for i in self.jobs[end].ids if i not in self.posts)
                end += 1
            self.posts.update(self.store.posts_by_ids(sorted(wanted)))
            self._loaded_to = end
        return [self.posts[i] for i in self.jobs[index].ids]

    def done(self, index: int) -> None:
        """jobs[index] is written: forget the posts no later page lists; of the others keep
        only what a page reads besides their items (serialised already, in every format)."""
        for i in self.jobs[index].ids:
            self.uses[i] -= 1
            if not self.uses[i]:
                self.fragments.forget(self.posts.pop(i))
                self.light.discard(i)
            elif i not in self.light:
                self.posts[i] = replace(
                    self.posts[i], content_html="", summary="", summary_html=None
                )
                self.light.add(i)


def render_archives(
    store: Store,
    jobs: Sequence[PageJob],
    formats: Sequence[FeedFormat],
    ctx: FeedContext,
    write: Callable[[str, list[bytes]], None],
) -> None:
    """Render and `write` every planned page (jobs in the order oldest_first gives)."""
    window = _Window(store, jobs)
    for index, job in enumerate(jobs):
        items = window.posts_of(index)
        for fmt in formats:
            data = render_parts(fmt, job.spec, items, ctx, window.fragments, job.paging)
            write(FORMATS[fmt].path(job.spec, job.number), data)
        window.done(index)


def file_exists(root: Path) -> Callable[[str], bool]:
    """`exists(path)` for paths relative to the output folder: each folder is listed once
    (a feed's history folder holds thousands of pages)."""
    listed: dict[str, frozenset[str]] = {}

    def exists(relative: str) -> bool:
        folder, _, name = relative.rpartition("/")
        names = listed.get(folder)
        if names is None:
            try:
                with os.scandir(root / folder) as entries:
                    names = frozenset(e.name for e in entries if e.is_file())
            except OSError:
                names = frozenset()
            listed[folder] = names
        return name in names

    return exists
