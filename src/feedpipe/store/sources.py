"""Store mixin for source bookkeeping: document stats and reports, entry-to-post links."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.model import DocState, EntryLink, Skip
from feedpipe.model.sync import top_folder
from feedpipe.store.schema import source_docs, source_entries
from feedpipe.store.sqlutil import chunked


class SourcesMixin:
    """What the store remembers of the source, so unchanged documents are not parsed again."""

    engine: Engine

    def source_docs(self, keys: Sequence[str] | None = None) -> dict[str, DocState]:
        """The states of the documents `keys` (None: every document)."""
        with self.engine.connect() as conn:
            if keys is None:
                rows = conn.execute(sa.select(source_docs)).all()
            else:
                rows = [
                    r
                    for chunk in chunked(sorted(set(keys)))
                    for r in conn.execute(
                        sa.select(source_docs).where(source_docs.c.key.in_(chunk))
                    )
                ]
        return {r.key: _doc_state(r.size, r.mtime_ns, r.sha256, r.skips) for r in rows}

    def source_stats(self, folders: Collection[str] | None = None) -> dict[str, tuple[int, int]]:
        """(size, mtime_ns) by key of the stored documents in the top `folders` ("": the files
        at the root; None: every document): what a sync compares a scan to."""
        c = source_docs.c
        stmt = sa.select(c.key, c.size, c.mtime_ns)
        if folders is not None and not folders:
            return {}
        with self.engine.connect() as conn:
            if folders is not None:
                ranges = conn.dialect.name == "sqlite"
                stmt = stmt.where(sa.or_(*(_in_folder(c.key, f, ranges) for f in sorted(folders))))
            rows = conn.execute(stmt).all()
        if folders is None:
            return {key: (size, mtime) for key, size, mtime in rows}
        # LIKE ignores ASCII case on SQLite: keep the folders' own keys only
        return {key: (size, mtime) for key, size, mtime in rows if top_folder(key) in folders}

    def source_docs_summary(self) -> tuple[int, dict[str, DocState]]:
        """(how many documents are stored clean — one post, nothing skipped or warned —, the
        states of all the others by key): a sync that parses nothing reports exactly this."""
        unclean = source_docs.c.skips != sa.literal_column(f"'{_CLEAN}'")  # as in the index
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(source_docs)).scalar_one()
            rows = conn.execute(sa.select(source_docs).where(unclean)).all()
        others = {r.key: _doc_state(r.size, r.mtime_ns, r.sha256, r.skips) for r in rows}
        return total - len(others), others

    def source_links_of(
        self, doc_keys: Sequence[str] = (), post_ids: Sequence[int] = ()
    ) -> dict[str, EntryLink]:
        """Links of the given documents and of the given posts (not the whole table)."""
        out: dict[str, EntryLink] = {}
        with self.engine.connect() as conn:
            for column, values in (
                (source_entries.c.doc_key, doc_keys),
                (source_entries.c.post_id, post_ids),
            ):
                for chunk in chunked(values):
                    rows = conn.execute(sa.select(source_entries).where(column.in_(chunk)))
                    out.update({r.key: EntryLink(r.doc_key, r.post_id, r.entry_hash) for r in rows})
        return out

    def touch_docs(self, docs: list[tuple[str, int, int]]) -> None:
        """Record a new stat (key, size, mtime_ns) for documents whose content did not change."""
        if not docs:
            return
        stmt = (
            sa.update(source_docs)
            .where(source_docs.c.key == sa.bindparam("k"))
            .values(size=sa.bindparam("s"), mtime_ns=sa.bindparam("m"))
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, [{"k": k, "s": s, "m": m} for k, s, m in docs])


def _in_folder(key: sa.Column[str], folder: str, ranges: bool) -> sa.ColumnElement[bool]:
    """The keys in a top folder (and maybe others: the caller filters). `ranges`: a range of
    the primary key index, for SQLite's binary collation only (code point order, "0" after
    "/"); elsewhere LIKE, whatever the collation."""
    if not folder:
        return ~key.contains("/", autoescape=True)
    if ranges:
        return sa.and_(key > f"{folder}/", key < f"{folder}0")
    return key.startswith(f"{folder}/", autoescape=True)


# The `skips` column holds a document's report: "[]" for one clean post (nearly every
# document: no JSON parsed), else {"skips": [[key, reason]], "warnings": [...], "entries": n}.
# A bare list is the form stored before warnings and counts were kept (entries unknown).
_CLEAN = "[]"


def _doc_state(size: int, mtime_ns: int, sha256: str, text: str) -> DocState:
    if not text or text == _CLEAN:
        return DocState(size, mtime_ns, sha256, entries=1 if text == _CLEAN else None)
    data = json.loads(text)
    if isinstance(data, list):
        return DocState(size, mtime_ns, sha256, _skips(data))
    skips, warnings = _skips(data["skips"]), _skips(data["warnings"])
    return DocState(size, mtime_ns, sha256, skips, warnings, int(data["entries"]))


def _skips(pairs: list[list[str]]) -> tuple[Skip, ...]:
    return tuple(Skip(k, r) for k, r in pairs)


def dump_report(skips: tuple[Skip, ...], warnings: tuple[Skip, ...], entries: int) -> str:
    """The stored report of a parsed document (see `_doc_state`)."""
    if not skips and not warnings and entries == 1:
        return _CLEAN
    data = {
        "skips": [[s.key, s.reason] for s in skips],
        "warnings": [[w.key, w.reason] for w in warnings],
        "entries": entries,
    }
    return json.dumps(data, ensure_ascii=False)
