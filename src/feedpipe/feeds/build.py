"""Build feeds from the store: pick the feeds that changed, render them, write them atomically."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedpipe.feeds.archive import Layout, layout, pages_to_skip
from feedpipe.feeds.formats import FORMATS, OPML_NAME, XSLT_NAME, render_parts
from feedpipe.feeds.history import (
    PageJob,
    file_exists,
    left_out_missing,
    oldest_first,
    plan_archives,
    render_archives,
    split_jobs,
)
from feedpipe.feeds.icons import SiteImage, copy_images
from feedpipe.feeds.opml import render_opml
from feedpipe.feeds.page import PAGE_NAME, page_path, render_page, written_by_us
from feedpipe.feeds.render import ARCHIVE_DIR, FeedContext, Fragments, xslt_stylesheet
from feedpipe.feeds.writer import Output, read_file, remove_file, write_if_changed
from feedpipe.model import BuildReport, FeedSpec, Post, Term, TermKind
from feedpipe.parallel import Tick, checkpoint, process_pool, worker_count
from feedpipe.settings import FeedFormat, FeedsSettings
from feedpipe.store import Store

BUILT_AT = "feeds.built_at"
FINGERPRINT = "feeds.fingerprint"
ARCHIVE_META = "feeds.archive."  # + feed key: JSON list of its archive pages' digests
ALL_POSTS = 2**31 - 1  # visible_post_ids limit meaning "every post" (archives need them all)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Below this many feeds to render, starting worker processes costs more than it saves.
PARALLEL_FEEDS = 60


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """What shapes the output besides the posts; a change to any of it rebuilds every feed."""

    ctx: FeedContext
    formats: tuple[FeedFormat, ...]
    max_items: int
    tags: bool
    output_dir: Path
    archive_size: int | None = None  # posts per RFC 5005 archive page; None: no archives
    pages: bool = False  # write the human index.html of each feed
    tombstone_days: int = 0  # how long a retracted post's Atom tombstone stays in its feeds
    images: tuple[SiteImage, ...] = ()  # [site] icon / logo; local files are copied

    @classmethod
    def from_settings(
        cls, feeds: FeedsSettings, ctx: FeedContext, images: tuple[SiteImage, ...] = ()
    ) -> BuildOptions:
        size = feeds.archive_size if feeds.archive else None
        return cls(
            ctx,
            feeds.formats,
            feeds.max_items,
            feeds.tags,
            feeds.output_dir,
            size,
            feeds.pages,
            feeds.tombstone_days,
            images,
        )

    def fingerprint(self) -> str:
        data = {
            **asdict(self.ctx),
            "formats": self.formats,
            "max_items": self.max_items,
            "tags": self.tags,
            "archive_size": self.archive_size,
            "pages": self.pages,
            "tombstone_days": self.tombstone_days,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def feed_specs(site_title: str, terms: Iterable[Term]) -> list[FeedSpec]:
    """The site feed, then one feed per term, in a stable order."""
    specs = [FeedSpec("site", "", site_title)]
    specs += [FeedSpec(t.kind.value, t.slug, f"{site_title} — {t.name}", t) for t in terms]
    return specs


def choose_targets(
    specs: Sequence[FeedSpec], dirty: set[str], missing: set[str], full: bool
) -> list[FeedSpec]:
    """Feeds to render: all on a full build, else the dirty ones and those with a missing file."""
    if full:
        return list(specs)
    return [s for s in specs if s.key in dirty or s.key in missing]


def _missing_files(specs: Sequence[FeedSpec], opts: BuildOptions) -> set[str]:
    root = opts.output_dir
    missing = {
        s.key for s in specs for fmt in opts.formats if not (root / FORMATS[fmt].path(s)).is_file()
    }
    if opts.pages:
        missing |= {s.key for s in specs if not (root / page_path(s)).is_file()}
    return missing


def _stale_files(
    specs: Sequence[FeedSpec], opts: BuildOptions, archives: dict[str, int]
) -> list[str]:
    """Generated files of feeds (or formats, archive pages, pages) that no longer exist.

    `archives` is the archive page count of every feed rendered in this build; the archive
    files of the feeds not rendered are left alone.
    """
    wanted = {FORMATS[f].path(s) for s in specs for f in opts.formats}
    if opts.pages:
        wanted |= {page_path(s) for s in specs}
    names = {f.file_name for f in FORMATS.values()}
    folders = [""] + [
        f"{kind}/{d.name}/"
        for kind in ("category", "tag")
        if (opts.output_dir / kind).is_dir()
        for d in (opts.output_dir / kind).iterdir()
        if d.is_dir()
    ]
    keys = {s.key: s for s in specs}
    found: list[str] = []
    for folder in folders:
        here = opts.output_dir / folder
        found += [folder + n for n in names if (here / n).is_file()]
        page = here / PAGE_NAME
        if page.is_file() and written_by_us(read_file(page)):
            found.append(folder + PAGE_NAME)
        key = folder.rstrip("/") or "site"
        history = here / ARCHIVE_DIR
        if history.is_dir() and (key not in keys or key in archives):
            pages = _page_names(opts.formats, archives.get(key, 0) if key in keys else 0)
            found += [
                f"{folder}{ARCHIVE_DIR}/{f.name}"
                for f in os.scandir(history)
                if f.name not in pages and f.is_file()
            ]
    return sorted(set(found) - wanted)


def _page_names(formats: Sequence[FeedFormat], count: int) -> set[str]:
    """The file names of a feed's archive pages 1..count in each of `formats`."""
    site = FeedSpec("site", "", "")
    return {
        FORMATS[f].path(site, page).rpartition("/")[2]
        for f in formats
        for page in range(1, count + 1)
    }


@dataclass(slots=True)
class Rendered:
    """What rendering a share of the feeds did: files written, files unchanged, and the
    archive page digests of each feed (stored in meta so unchanged pages are skipped)."""

    written: list[str]
    unchanged: int = 0
    digests: dict[str, list[str]] | None = None

    def add(self, other: Rendered) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.digests = {**(self.digests or {}), **(other.digests or {})}


@dataclass(frozen=True, slots=True)
class Stored:
    """A feed's archive pages as its last build left them: their digests, and that build's
    time (None for the digests of a version that did not store it)."""

    pages: list[str]
    at: datetime | None = None

    @classmethod
    def parse(cls, text: str | None) -> Stored:
        data = json.loads(text or "[]")
        if isinstance(data, list):
            return cls(data)
        return cls(data["pages"], datetime.fromisoformat(data["at"]))

    @staticmethod
    def dump(pages: list[str], at: datetime) -> str:
        return json.dumps({"at": at.isoformat(), "pages": pages})


def _layout_of(
    store: Store,
    spec: FeedSpec,
    opts: BuildOptions,
    now: datetime,
    old: Stored,
    changed_from: datetime | None,
) -> Layout:
    """A feed's layout, leaving out the oldest full archive pages known unchanged: those of
    posts published before every change since the last build (`changed_from`; None: not
    known), that build's time and now. They are as that build wrote them: no post of theirs
    was written or removed, and none came due or went out of date."""
    size, items = opts.archive_size, opts.max_items
    if size is None:
        return layout(store.visible_post_ids(spec, items, now), items, None)
    first = total = 0
    if changed_from is not None and old.at is not None and len(old.pages) > 1:
        total, unchanged = store.visible_count(spec, now, min(changed_from, old.at, now))
        first = min(pages_to_skip(total - items, unchanged, size), len(old.pages) - 1)
    limit = ALL_POSTS if not first else total - first * size
    return layout(store.visible_post_ids(spec, limit, now), items, size, first)


def _all_pages(store: Store, spec: FeedSpec, opts: BuildOptions, now: datetime) -> Layout:
    ids = store.visible_post_ids(spec, ALL_POSTS, now)
    return layout(ids, opts.max_items, opts.archive_size)


def _load_posts(
    store: Store,
    targets: Sequence[FeedSpec],
    opts: BuildOptions,
    now: datetime,
    known: dict[str, Stored],
    changed_from: datetime | None,
) -> tuple[dict[str, Layout], dict[int, Post]]:
    """Each feed's layout and the posts of its subscription document."""
    layouts = {
        s.key: _layout_of(store, s, opts, now, known.get(s.key, Stored([])), changed_from)
        for s in targets
    }
    wanted = sorted({i for lay in layouts.values() for i in lay.current})
    return layouts, store.posts_by_ids(wanted)


def _write(out: Output, path: str, data: bytes | list[bytes], done: Rendered) -> None:
    if out.write_if_changed(path, data):
        done.written.append(path)
    else:
        done.unchanged += 1


Archived = list[tuple[FeedSpec, Layout, list[str]]]  # (feed, its layout, stored digests)


def _render_targets(
    store: Store,
    targets: Sequence[FeedSpec],
    opts: BuildOptions,
    now: datetime,
    full: bool,
    changed_from: datetime | None,
    tick: Tick | None = None,
) -> tuple[Rendered, Archived]:
    """Render the subscription documents (and pages) of `targets`; their archive pages are
    left to the caller, which gets every feed's layout and stored page digests for them."""
    done = Rendered([], 0, {})
    out = Output(opts.output_dir)
    fragments = Fragments()
    stored = {} if full else store.meta_with_prefix(ARCHIVE_META)
    known = {key[len(ARCHIVE_META) :]: Stored.parse(value) for key, value in stored.items()}
    tombstones = _tombstones(store, opts, now)
    archived: Archived = []
    for start in range(0, len(targets), 100):
        batch = targets[start : start + 100]
        layouts, posts = _load_posts(store, batch, opts, now, known, changed_from)
        for spec in batch:
            lay = layouts[spec.key]
            items = [posts[i] for i in lay.current]
            for fmt in opts.formats:
                paging = lay.paging(0, tombstones.get(spec.key, ()))
                data = render_parts(fmt, spec, items, opts.ctx, fragments, paging)
                _write(out, FORMATS[fmt].path(spec), data, done)
            if opts.pages:
                _write_page(opts, out, spec, items, done)
            archived.append((spec, lay, known.get(spec.key, Stored([])).pages))
        if tick is not None:
            tick(start + len(batch), len(targets))
        checkpoint()  # a held Ctrl-C (parallel.held_interrupts): the next build redoes these
    return done, archived


def _plan_archives(
    store: Store, archived: Archived, opts: BuildOptions, now: datetime, done: Rendered
) -> list[PageJob]:
    """The archive pages whose posts or links changed (or whose file is missing), in the
    order that renders the pages sharing posts close together; every feed's page digests
    go into `done`."""
    exists = file_exists(opts.output_dir)
    archived = [
        (spec, _all_pages(store, spec, opts, now), old)
        if left_out_missing(spec, lay, opts.formats, exists)
        else (spec, lay, old)
        for spec, lay, old in archived
    ]
    plan = plan_archives(store, archived, opts.formats, exists)
    done.unchanged += plan.unchanged
    done.digests = {**(done.digests or {}), **plan.digests}
    if not plan.jobs:
        return []
    site = next((lay for spec, lay, _ in archived if spec.key == "site"), None)
    if site is not None:
        order = [*site.current, *(i for ids in reversed(site.pages) for i in ids)]
    else:
        order = store.visible_post_ids(FeedSpec("site", "", ""), ALL_POSTS, now)
    return oldest_first(plan.jobs, order)


def _render_pages(store: Store, jobs: Sequence[PageJob], opts: BuildOptions) -> Rendered:
    """Render and write archive pages (in `_plan_archives` order)."""
    done = Rendered([], 0, {})
    out = Output(opts.output_dir)
    render_archives(store, jobs, opts.formats, opts.ctx, lambda p, d: _write(out, p, d, done))
    return done


def _tombstones(
    store: Store, opts: BuildOptions, now: datetime
) -> dict[str, tuple[tuple[str, datetime], ...]]:
    """(guid, when) of the posts retracted within tombstone_days, by feed key."""
    if not opts.tombstone_days:
        return {}
    out: dict[str, list[tuple[str, datetime]]] = {}
    for guid, when, keys in store.retractions(now - timedelta(days=opts.tombstone_days), now):
        for key in keys:
            out.setdefault(key, []).append((guid, when))
    return {key: tuple(found) for key, found in out.items()}


def _write_page(
    opts: BuildOptions, out: Output, spec: FeedSpec, items: Sequence[Post], done: Rendered
) -> None:
    """The human page, unless a page feedpipe did not write is in the way."""
    path = page_path(spec)
    target = opts.output_dir / path
    if target.is_file() and not written_by_us(read_file(target)):
        return
    _write(out, path, render_page(spec, items, opts.ctx, opts.formats), done)


def _render_share(
    opener: Callable[[], Store],
    targets: Sequence[FeedSpec],
    opts: BuildOptions,
    now: datetime,
    full: bool,
    changed_from: datetime | None,
) -> tuple[Rendered, Archived]:
    """Worker process: render a share of the feeds with a store handle of its own."""
    store = opener()
    try:
        return _render_targets(store, targets, opts, now, full, changed_from)
    finally:
        store.close()


def _render_page_share(
    opener: Callable[[], Store], jobs: Sequence[PageJob], opts: BuildOptions
) -> Rendered:
    """Worker process: render a run of archive pages with a store handle of its own."""
    store = opener()
    try:
        return _render_pages(store, jobs, opts)
    finally:
        store.close()


def _render_all(
    store: Store,
    targets: Sequence[FeedSpec],
    opts: BuildOptions,
    now: datetime,
    full: bool,
    changed_from: datetime | None,
    tick: Tick | None,
) -> Rendered:
    """Render on every core when there are many feeds (cold builds), else in this process;
    `tick(feeds done, feeds)` after each share. The subscription documents are split by
    feed; the archive pages, planned here for all feeds, by runs of pages sharing posts."""
    opener = store.opener()
    workers = worker_count(len(targets), PARALLEL_FEEDS)
    if workers == 1 or opener is None:
        done, feeds = _render_targets(store, targets, opts, now, full, changed_from, tick)
        done.add(_render_pages(store, _plan_archives(store, feeds, opts, now, done), opts))
        return done
    shares = [targets[i::workers] for i in range(workers)]
    done = Rendered([], 0, {})
    archived: Archived = []
    with process_pool(workers) as pool:
        results = pool.map(
            _render_share,
            [opener] * workers,
            shares,
            [opts] * workers,
            [now] * workers,
            [full] * workers,
            [changed_from] * workers,
        )
        for count, (result, feeds) in enumerate(results, 1):
            done.add(result)
            archived += feeds
            if tick is not None:
                tick(sum(len(s) for s in shares[:count]), len(targets))
        runs = split_jobs(_plan_archives(store, archived, opts, now, done), workers)
        for result in pool.map(_render_page_share, [opener] * len(runs), runs, [opts] * len(runs)):
            done.add(result)
    done.written.sort()
    return done


def _write_extras(specs: Sequence[FeedSpec], opts: BuildOptions) -> tuple[list[str], list[str]]:
    """The OPML, the stylesheet and the site images: (written, removed)."""
    written, removed = copy_images(opts.images, opts.output_dir)
    opml = render_opml(specs, opts.formats, opts.ctx)
    if write_if_changed(opts.output_dir, OPML_NAME, opml):
        written.append(OPML_NAME)
    if opts.ctx.xslt and write_if_changed(opts.output_dir, XSLT_NAME, xslt_stylesheet()):
        written.append(XSLT_NAME)
    return written, removed


def build_feeds(
    store: Store,
    opts: BuildOptions,
    now: datetime,
    *,
    full: bool = False,
    tick: Tick | None = None,
) -> BuildReport:
    """Render and write every feed whose content may have changed since the last build;
    `tick(feeds done, feeds to render)` as it goes."""
    started = time.perf_counter()
    seen = store.changed_from()  # before anything is read: a sync from now on lowers it
    fingerprint = opts.fingerprint()
    full = full or store.get_meta(FINGERPRINT) != fingerprint
    built_at = store.get_meta(BUILT_AT)
    since = datetime.fromisoformat(built_at) if built_at else EPOCH
    dirty = store.dirty_feed_keys() | store.newly_due_feed_keys(since, now)
    if opts.tombstone_days:  # tombstones that expired since the last build leave their feeds
        window = timedelta(days=opts.tombstone_days)
        dirty |= {k for _, _, keys in store.retractions(since - window, now - window) for k in keys}
    kinds = [TermKind.CATEGORY, TermKind.TAG] if opts.tags else [TermKind.CATEGORY]
    specs = feed_specs(opts.ctx.site_title, store.feed_terms(now, kinds))
    targets = choose_targets(specs, dirty, _missing_files(specs, opts), full)
    changed_from = None if seen is None else datetime.fromisoformat(seen) if seen else now
    done = _render_all(store, targets, opts, now, full, changed_from, tick)
    written, unchanged, digests = done.written, done.unchanged, done.digests or {}
    extras, removed = _write_extras(specs, opts)
    written += extras
    archives = {key: len(pages) for key, pages in digests.items()}
    stale = _stale_files(specs, opts, archives)
    removed += [p for p in stale if remove_file(opts.output_dir, p)]
    for key, pages in digests.items():
        store.set_meta(ARCHIVE_META + key, Stored.dump(pages, now))
    store.clear_dirty(dirty)
    store.settle_changes(seen)
    store.set_meta(BUILT_AT, now.isoformat())
    store.set_meta(FINGERPRINT, fingerprint)
    unchanged += (len(specs) - len(targets)) * (len(opts.formats) + opts.pages)
    return BuildReport(
        written=tuple(written),
        unchanged=unchanged,
        removed=tuple(removed),
        feeds=len(specs),
        seconds=time.perf_counter() - started,
    )
