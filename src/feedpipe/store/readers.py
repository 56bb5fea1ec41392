"""Store mixin: feed reader tallies (per feed and client, aggregated; no IP address anywhere)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.model.readers import ReaderRow, ReaderTally
from feedpipe.store.outbox import write_transaction
from feedpipe.store.schema import metadata
from feedpipe.store.types import UTCDateTime

feed_readers = sa.Table(
    "feed_readers",
    metadata,
    sa.Column("feed", sa.String(300), primary_key=True),
    sa.Column("client", sa.String(300), primary_key=True),
    sa.Column("aggregator", sa.String(100), nullable=False),
    sa.Column("subscribers", sa.Integer),  # latest announced
    sa.Column("subscribers_at", UTCDateTime),  # when it was announced
    sa.Column("fetches", sa.Integer, nullable=False),
    sa.Column("not_modified", sa.Integer, nullable=False),
    sa.Column("conditional", sa.Integer, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
)
_t = feed_readers.c


class ReadersMixin:
    """Reader tallies written by `feedpipe serve`, read by `feedpipe status --readers`."""

    engine: Engine

    def add_reader_tallies(self, tallies: Sequence[ReaderTally]) -> None:
        """Add the counts to each (feed, client) row; the latest subscriber count wins."""
        if not tallies:
            return
        with write_transaction(self.engine) as conn:
            for t in tallies:
                key = (_t.feed == t.feed) & (_t.client == t.client)
                values: dict[str, object] = {
                    "fetches": _t.fetches + t.fetches,
                    "not_modified": _t.not_modified + t.not_modified,
                    "conditional": _t.conditional + t.conditional,
                    "last_seen": t.last_seen,  # flushes come in order
                    "aggregator": t.aggregator,
                }
                if t.subscribers is not None:
                    values |= {"subscribers": t.subscribers, "subscribers_at": t.last_seen}
                if conn.execute(sa.update(feed_readers).where(key).values(values)).rowcount:
                    continue
                conn.execute(
                    sa.insert(feed_readers).values(
                        feed=t.feed,
                        client=t.client,
                        aggregator=t.aggregator,
                        subscribers=t.subscribers,
                        subscribers_at=t.last_seen if t.subscribers is not None else None,
                        fetches=t.fetches,
                        not_modified=t.not_modified,
                        conditional=t.conditional,
                        first_seen=t.last_seen,
                        last_seen=t.last_seen,
                    )
                )

    def reader_rows(self) -> list[ReaderRow]:
        """Per feed and aggregator: the latest subscriber count, last fetch and the counts."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(feed_readers)).all()
        grouped: dict[tuple[str, str], list[sa.Row[tuple[object, ...]]]] = {}
        for r in rows:
            grouped.setdefault((r.feed, r.aggregator), []).append(r)
        out = []
        for (feed, aggregator), group in sorted(grouped.items()):
            counted = [r for r in group if r.subscribers is not None]
            latest = max(counted, key=lambda r: r.subscribers_at) if counted else None
            out.append(
                ReaderRow(
                    feed,
                    aggregator,
                    latest.subscribers if latest is not None else None,
                    max(r.last_seen for r in group),
                    sum(r.fetches for r in group),
                    sum(r.not_modified for r in group),
                    sum(r.conditional for r in group),
                )
            )
        return out
