"""Sync I/O: scan the source, parse what changed (on all cores when there is a lot), apply."""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import replace
from datetime import datetime

from feedpipe.model import (
    DocState,
    Document,
    EntryLink,
    ParsedDocument,
    PostRef,
    SyncReport,
)
from feedpipe.parallel import Tick, checkpoint, process_pool, release_memory, worker_count
from feedpipe.source import Source, Stat, documents
from feedpipe.store import Store
from feedpipe.sync import scan
from feedpipe.sync.decide import candidate_slugs, decide, split_by_stat
from feedpipe.sync.scan import by_folder, folder_digests

SCAN_META = "sync.scan"  # the folder digests of the last sync that applied every batch

# Below this many documents to parse, a process pool costs more than it saves.
PARALLEL_THRESHOLD = 200


# Parsed documents are applied to the store in transactions of this many, while the worker
# processes go on parsing the next ones (and memory stays bounded on a cold sync).
APPLY_BATCH = 2000
PARSE_CHUNK = 200  # documents per task sent to a worker process

Item = tuple[Document, bytes | None]  # bytes already read (changed docs) or None (new docs)


def _parse_item(source: Source, item: Item) -> ParsedDocument:
    doc, data = item
    return source.parse(doc, source.read(doc) if data is None else data)


def _batched(results: Iterator[ParsedDocument], size: int) -> Iterator[list[ParsedDocument]]:
    batch: list[ParsedDocument] = []
    for result in results:
        batch.append(result)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_chunk(source: Source, items: Sequence[Item]) -> list[ParsedDocument]:
    return [_parse_item(source, item) for item in items]


def in_flight(workers: int) -> int:
    """Chunks submitted ahead of the one being consumed: a whole apply batch plus two per
    worker, so the workers go on parsing the next batch while this process applies one (a
    smaller window stalls them for every transaction) and memory stays bounded (~3k docs)."""
    return APPLY_BATCH // PARSE_CHUNK + 2 * workers


def _pooled(source: Source, items: Sequence[Item], workers: int) -> Iterator[ParsedDocument]:
    """Parse in worker processes, in order, with a bounded number of chunks in flight (so
    results never pile up in memory faster than the store takes them)."""
    chunks = [items[i : i + PARSE_CHUNK] for i in range(0, len(items), PARSE_CHUNK)]
    window = in_flight(workers)
    with process_pool(workers) as pool:
        pending: deque[Future[list[ParsedDocument]]] = deque()
        for chunk in chunks:
            pending.append(pool.submit(_parse_chunk, source, chunk))
            if len(pending) > window:
                yield from pool.wait(pending.popleft())
        while pending:
            yield from pool.wait(pending.popleft())


def parse_batches(source: Source, items: Sequence[Item]) -> Generator[list[ParsedDocument]]:
    """Parsed documents in `items` order, in batches; on every core when there are many."""
    workers = worker_count(len(items), PARALLEL_THRESHOLD)
    if workers == 1:
        yield from _batched((_parse_item(source, item) for item in items), APPLY_BATCH)
    else:
        yield from _batched(_pooled(source, items, workers), APPLY_BATCH)


def _classify(
    source: Source, docs: list[Document], known: dict[str, DocState]
) -> tuple[list[Document], list[tuple[Document, bytes]], list[tuple[str, int, int]]]:
    """Split docs whose stat changed into (new, changed with bytes, same content new stat)."""
    unknown: list[Document] = []
    changed: list[tuple[Document, bytes]] = []
    touched: list[tuple[str, int, int]] = []
    for doc in docs:
        state = known.get(doc.key)
        if state is None:
            unknown.append(doc)
            continue
        data = source.read(doc)
        if hashlib.sha256(data).hexdigest() == state.sha256:
            touched.append((doc.key, doc.size, doc.mtime_ns))
        else:
            changed.append((doc, data))
    return unknown, changed, touched


def _store_view(
    store: Store, dropped: set[str], parsed: list[ParsedDocument]
) -> tuple[dict[str, EntryLink], dict[str, PostRef]]:
    """Just the links and posts a sync can touch (see `decide`), not the whole store."""
    links = store.source_links_of(doc_keys=sorted(dropped))
    refs = store.post_refs_of(
        sorted(candidate_slugs(parsed)), [link.post_id for link in links.values()]
    )
    links.update(store.source_links_of(post_ids=[r.id for r in refs.values()]))
    return links, refs


def _not_parsed_report(states: Sequence[DocState]) -> SyncReport:
    """The documents not parsed again: their posts unchanged, their skips and warnings as
    stored (a document stored before counts were kept counts one post unless skipped)."""
    unchanged = sum(s.entries if s.entries is not None else (0 if s.skips else 1) for s in states)
    return SyncReport(
        unchanged=unchanged,
        skipped=tuple(skip for s in states for skip in s.skips),
        warnings=tuple(w for s in states for w in s.warnings),
    )


def _unchanged_report(
    store: Store, excluded: set[str], known: Mapping[str, DocState]
) -> SyncReport:
    """What the documents not parsed again (all but `excluded`, whose states are in `known`)
    report, from two reads: a count of the clean ones and the few with skips or warnings."""
    clean, others = store.source_docs_summary()
    clean -= sum(1 for key in excluded if key in known and known[key].clean)
    report = _not_parsed_report([others[key] for key in sorted(others) if key not in excluded])
    return replace(report, unchanged=report.unchanged + clean)


def _moved(
    store: Store, folders: Mapping[str, list[Stat]], moved: list[str] | None
) -> tuple[list[Document], dict[str, tuple[int, int]]]:
    """The scanned documents and the stored stats of the `moved` folders (None: of all)."""
    names = sorted(folders) if moved is None else moved
    scanned = documents([stat for name in names for stat in folders.get(name, [])])
    return scanned, store.source_stats(moved)


def _tick(tick: Tick | None, done: int, total: int) -> None:
    if tick is not None:
        tick(done, total)
    checkpoint()


def run_sync(
    source: Source,
    store: Store,
    now: Callable[[], datetime],
    url_for: Callable[[str], str],
    tick: Tick | None = None,
) -> SyncReport:
    """One sync: scan, parse what changed (in batches), decide and apply each batch atomically.

    Unchanged documents cost a stat (and, if the stat moved, a hash); they are not parsed.
    `tick(done, total)` follows the documents to parse, after each committed batch (and a held
    Ctrl-C is taken there: see `parallel.held_interrupts`).
    """
    started = time.perf_counter()
    folders = by_folder(source.stats())
    digests = folder_digests(folders)
    stored = scan.load(store.get_meta(SCAN_META))
    if stored == digests:  # nothing changed since the last whole sync
        report = _unchanged_report(store, set(), {})
        return replace(report, seconds=time.perf_counter() - started)
    store.set_meta(SCAN_META, "")  # until this sync has applied every batch
    moved = None if stored is None else scan.moved(digests, stored)  # None: compare all
    scanned, stats = _moved(store, folders, moved)
    _, suspects = split_by_stat(scanned, stats)
    gone = sorted(stats.keys() - {d.key for d in scanned})
    known = store.source_docs([d.key for d in suspects if d.key in stats] + gone)
    unknown, changed, touched = _classify(source, suspects, known)
    store.touch_docs(touched)
    items: list[Item] = sorted(
        [(d, None) for d in unknown] + [(d, b) for d, b in changed], key=lambda i: i[0].key
    )
    again = {doc.key for doc, _ in items}
    parts = [_unchanged_report(store, again | set(gone), known)]  # then one per batch
    nothing: list[list[ParsedDocument]] = [[]] if gone else []
    batches = parse_batches(source, items) if items else (batch for batch in nothing)
    done = 0
    _tick(tick, 0, len(items))
    with closing(batches):  # stopped early (Ctrl-C, an error): its process pool stops now
        for index, parsed in enumerate(batches):
            dropped = gone if index == 0 else []
            links, refs = _store_view(store, {p.doc.key for p in parsed} | set(dropped), parsed)
            changes, report = decide(parsed, dropped, links, refs, now())
            store.apply_sync(changes, now(), url_for)
            parts.append(report)
            done += len(parsed)
            _tick(tick, done, len(items))
    store.set_meta(SCAN_META, scan.dump(digests))
    if len(items) >= PARALLEL_THRESHOLD:
        release_memory()  # the parsed batches are gone; a build forks its workers next
    return SyncReport.total(parts, time.perf_counter() - started)
