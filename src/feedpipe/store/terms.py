"""Store mixin for categories and tags: one row per (kind, key), unique slug per kind."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from feedpipe.model import Term, TermKind
from feedpipe.model.terms import base_slug, disambiguated_slug, term_key
from feedpipe.store.schema import terms


class TermCache:
    """Terms of one transaction by (kind, key); creates missing ones with a free slug."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.by_key: dict[tuple[str, str], tuple[int, Term]] = {}
        self.by_name: dict[tuple[TermKind, str], tuple[int, Term]] = {}  # names as written
        self.slugs: set[tuple[str, str]] = set()
        for row in conn.execute(sa.select(terms)).all():
            term = Term(TermKind(row.kind), row.name, row.key, row.slug)
            self.by_key[(row.kind, row.key)] = (row.id, term)
            self.slugs.add((row.kind, row.slug))

    def get_or_create(self, kind: TermKind, name: str) -> tuple[int, Term]:
        """The term a post's name means: found by the name as written (a sync repeats a few
        hundred names tens of thousands of times), else by its key, else created."""
        found = self.by_name.get((kind, name))
        if found is None:
            found = self.by_name[(kind, name)] = self._by_key(kind, name)
        return found

    def _by_key(self, kind: TermKind, name: str) -> tuple[int, Term]:
        key = term_key(name)
        found = self.by_key.get((kind.value, key))
        if found:
            return found
        slug = base_slug(name)
        if (kind.value, slug) in self.slugs:
            slug = disambiguated_slug(name)
        row_id = self.conn.execute(
            sa.insert(terms).values(kind=kind.value, key=key, slug=slug, name=name)
        ).inserted_primary_key
        assert row_id is not None
        term = Term(kind, name, key, slug)
        self.by_key[(kind.value, key)] = (int(row_id[0]), term)
        self.slugs.add((kind.value, slug))
        return self.by_key[(kind.value, key)]


class TermsMixin:
    """Read access to terms."""

    engine: Engine

    def terms(self, kind: TermKind) -> list[Term]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(terms).where(terms.c.kind == kind.value).order_by(terms.c.slug)
            ).all()
        return [Term(kind, r.name, r.key, r.slug) for r in rows]
