"""Store mixin for source bookkeeping: document stats and entry-to-post links."""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.model import DocState, EntryLink, Skip
from feedpipe.store.schema import source_docs, source_entries
from feedpipe.store.sqlutil import chunked


class SourcesMixin:
    """What the store remembers of the source, so unchanged documents are not parsed again."""

    engine: Engine

    def source_docs(self) -> dict[str, DocState]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(source_docs)).all()
        return {r.key: DocState(r.size, r.mtime_ns, r.sha256, _load_skips(r.skips)) for r in rows}

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


def _load_skips(text: str) -> tuple[Skip, ...]:
    if not text or text == "[]":  # nearly every document: skip the JSON parser
        return ()
    return tuple(Skip(k, r) for k, r in json.loads(text))


def dump_skips(skips: tuple[Skip, ...]) -> str:
    return json.dumps([[s.key, s.reason] for s in skips], ensure_ascii=False)
