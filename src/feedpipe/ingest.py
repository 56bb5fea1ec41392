"""Sync I/O: scan the source, parse what changed (on all cores when there is a lot), apply."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from feedpipe.model import Document, ParsedDocument, SyncReport
from feedpipe.parallel import process_pool, worker_count
from feedpipe.source import Source
from feedpipe.store import Store
from feedpipe.sync import (
    DocState,
    EntryLink,
    PostRef,
    SyncChanges,
    candidate_slugs,
    decide,
    split_by_stat,
)

# Below this many documents to parse, a process pool costs more than it saves.
PARALLEL_THRESHOLD = 200


def _parse_unknown(source: Source, doc: Document) -> ParsedDocument:
    return source.parse(doc, source.read(doc))


def _parse_known(source: Source, item: tuple[Document, bytes]) -> ParsedDocument:
    return source.parse(item[0], item[1])


def parse_all(
    source: Source, unknown: Sequence[Document], known: Sequence[tuple[Document, bytes]]
) -> list[ParsedDocument]:
    """Parse documents, reading unknown ones in the workers; in input order."""
    jobs = len(unknown) + len(known)
    workers = worker_count(jobs, PARALLEL_THRESHOLD)
    if workers == 1:
        return [_parse_unknown(source, d) for d in unknown] + [
            _parse_known(source, item) for item in known
        ]
    chunk = max(1, jobs // (workers * 8))
    with process_pool(workers) as pool:
        first = list(pool.map(_parse_unknown, [source] * len(unknown), unknown, chunksize=chunk))
        second = list(pool.map(_parse_known, [source] * len(known), known, chunksize=chunk))
    return first + second


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


def run_sync(
    source: Source, store: Store, now: Callable[[], datetime], url_for: Callable[[str], str]
) -> SyncReport:
    """One sync: scan, parse what changed, decide, apply in one transaction."""
    started = time.perf_counter()
    scanned = source.scan()
    known = store.source_docs()
    _, suspects = split_by_stat(scanned, known)
    unknown, changed, touched = _classify(source, suspects, known)
    parsed = parse_all(source, unknown, changed)
    store.touch_docs(touched)
    gone = known.keys() - {d.key for d in scanned}
    if parsed or gone:
        links, refs = _store_view(store, gone | {p.doc.key for p in parsed}, parsed)
        changes = decide(scanned, known, parsed, links, refs)
        store.apply_sync(changes, now(), url_for)
    else:
        changes = SyncChanges(unchanged=len(scanned))
        changes.skipped = [s for d in scanned for s in known[d.key].skips]
    return SyncReport(
        added=tuple(changes.added),
        updated=tuple(changes.updated),
        removed=tuple(r.slug for r in changes.posts_remove),
        unchanged=changes.unchanged,
        skipped=tuple(changes.skipped),
        warnings=tuple(changes.warnings),
        duplicates=tuple(changes.duplicates),
        seconds=time.perf_counter() - started,
    )
