"""Store mixin for small named values (last build time, settings fingerprint, token secret)."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.store.schema import meta
from feedpipe.store.sqlutil import dialect_insert


class MetaMixin:
    """The `meta` table: one writer (an atomic upsert), safe with several workers at once."""

    engine: Engine

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def meta_with_prefix(self, prefix: str) -> dict[str, str]:
        """Every meta value whose key starts with `prefix`, by key."""
        stmt = sa.select(meta.c.key, meta.c.value).where(
            meta.c.key.startswith(prefix, autoescape=True)
        )
        with self.engine.connect() as conn:
            return {str(k): str(v) for k, v in conn.execute(stmt)}

    def set_meta(self, key: str, value: str) -> None:
        """Insert or replace one value atomically."""
        self._put_meta(key, value, replace=True)

    def meta_setdefault(self, key: str, make: str | None = None) -> str:
        """The meta value under `key`; stores `make` (or a random secret) first if absent."""
        found = self.get_meta(key)
        if found is not None:
            return found
        self._put_meta(key, make or secrets.token_urlsafe(32), replace=False)
        stored = self.get_meta(key)  # another process may have stored it first: theirs wins
        assert stored is not None
        return stored

    def _put_meta(self, key: str, value: str, *, replace: bool) -> None:
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, meta).values(key=key, value=value)
            if replace:
                stmt = stmt.on_conflict_do_update(
                    index_elements=[meta.c.key], set_={"value": value}
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=[meta.c.key])
            conn.execute(stmt)
