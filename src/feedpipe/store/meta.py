"""Store mixin for small named values (last build time, settings fingerprint)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.store.schema import meta


class MetaMixin:
    engine: Engine

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(meta).where(meta.c.key == key))
            conn.execute(sa.insert(meta).values(key=key, value=value))
