"""Build feeds from the store: pick the feeds that changed, render them, write them atomically."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from feedpipe.feeds.formats import FORMATS, OPML_NAME, XSLT_NAME, render_feed
from feedpipe.feeds.opml import render_opml
from feedpipe.feeds.render import FeedContext, Fragments, xslt_stylesheet
from feedpipe.feeds.writer import remove_file, write_if_changed
from feedpipe.model import BuildReport, FeedSpec, Post, Term, TermKind
from feedpipe.parallel import process_pool, worker_count
from feedpipe.settings import FeedFormat, FeedsSettings
from feedpipe.store import Store

BUILT_AT = "feeds.built_at"
FINGERPRINT = "feeds.fingerprint"
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

    @classmethod
    def from_settings(cls, feeds: FeedsSettings, ctx: FeedContext) -> BuildOptions:
        return cls(ctx, feeds.formats, feeds.max_items, feeds.tags, feeds.output_dir)

    def fingerprint(self) -> str:
        data = {
            **asdict(self.ctx),
            "formats": self.formats,
            "max_items": self.max_items,
            "tags": self.tags,
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
    return {
        s.key for s in specs for fmt in opts.formats if not (root / FORMATS[fmt].path(s)).is_file()
    }


def _stale_files(specs: Sequence[FeedSpec], opts: BuildOptions) -> list[str]:
    """Generated files of feeds (or formats) that no longer exist."""
    wanted = {FORMATS[f].path(s) for s in specs for f in opts.formats}
    names = {f.file_name for f in FORMATS.values()}
    found: list[str] = [n for n in names if (opts.output_dir / n).is_file()]
    for kind in ("category", "tag"):
        folder = opts.output_dir / kind
        if folder.is_dir():
            found += [
                f"{kind}/{d.name}/{f.name}"
                for d in folder.iterdir()
                if d.is_dir()
                for f in d.iterdir()
                if f.name in names
            ]
    return sorted(set(found) - wanted)


def _load_posts(
    store: Store, targets: Sequence[FeedSpec], limit: int, now: datetime
) -> tuple[dict[str, list[int]], dict[int, Post]]:
    ids = {s.key: store.visible_post_ids(s, limit, now) for s in targets}
    wanted = sorted({i for lst in ids.values() for i in lst})
    return ids, store.posts_by_ids(wanted)


def _render_targets(
    store: Store, targets: Sequence[FeedSpec], opts: BuildOptions, now: datetime
) -> tuple[list[str], int]:
    written: list[str] = []
    unchanged = 0
    fragments = Fragments()
    for start in range(0, len(targets), 100):
        batch = targets[start : start + 100]
        ids, posts = _load_posts(store, batch, opts.max_items, now)
        for spec in batch:
            items = [posts[i] for i in ids[spec.key]]
            for fmt in opts.formats:
                path = FORMATS[fmt].path(spec)
                data = render_feed(fmt, spec, items, opts.ctx, fragments)
                if write_if_changed(opts.output_dir, path, data):
                    written.append(path)
                else:
                    unchanged += 1
    return written, unchanged


def _render_share(
    opener: Callable[[], Store], targets: Sequence[FeedSpec], opts: BuildOptions, now: datetime
) -> tuple[list[str], int]:
    """Worker process: render a share of the feeds with a store handle of its own."""
    store = opener()
    try:
        return _render_targets(store, targets, opts, now)
    finally:
        store.close()


def _render_all(
    store: Store, targets: Sequence[FeedSpec], opts: BuildOptions, now: datetime
) -> tuple[list[str], int]:
    """Render on every core when there are many feeds (cold builds), else in this process."""
    opener = store.opener()
    workers = worker_count(len(targets), PARALLEL_FEEDS)
    if workers == 1 or opener is None:
        return _render_targets(store, targets, opts, now)
    shares = [targets[i::workers] for i in range(workers)]
    with process_pool(workers) as pool:
        results = list(
            pool.map(_render_share, [opener] * workers, shares, [opts] * workers, [now] * workers)
        )
    written = sorted(p for w, _ in results for p in w)
    return written, sum(u for _, u in results)


def _write_extras(specs: Sequence[FeedSpec], opts: BuildOptions) -> list[str]:
    written = []
    opml = render_opml(specs, opts.formats, opts.ctx)
    if write_if_changed(opts.output_dir, OPML_NAME, opml):
        written.append(OPML_NAME)
    if opts.ctx.xslt and write_if_changed(opts.output_dir, XSLT_NAME, xslt_stylesheet()):
        written.append(XSLT_NAME)
    return written


def build_feeds(
    store: Store, opts: BuildOptions, now: datetime, *, full: bool = False
) -> BuildReport:
    """Render and write every feed whose content may have changed since the last build."""
    started = time.perf_counter()
    fingerprint = opts.fingerprint()
    full = full or store.get_meta(FINGERPRINT) != fingerprint
    built_at = store.get_meta(BUILT_AT)
    since = datetime.fromisoformat(built_at) if built_at else EPOCH
    dirty = store.dirty_feed_keys() | store.newly_due_feed_keys(since, now)
    kinds = [TermKind.CATEGORY, TermKind.TAG] if opts.tags else [TermKind.CATEGORY]
    specs = feed_specs(opts.ctx.site_title, store.feed_terms(now, kinds))
    targets = choose_targets(specs, dirty, _missing_files(specs, opts), full)
    written, unchanged = _render_all(store, targets, opts, now)
    written += _write_extras(specs, opts)
    removed = [p for p in _stale_files(specs, opts) if remove_file(opts.output_dir, p)]
    store.clear_dirty(dirty)
    store.set_meta(BUILT_AT, now.isoformat())
    store.set_meta(FINGERPRINT, fingerprint)
    unchanged += (len(specs) - len(targets)) * len(opts.formats)
    return BuildReport(
        written=tuple(written),
        unchanged=unchanged,
        removed=tuple(removed),
        feeds=len(specs),
        seconds=time.perf_counter() - started,
    )
