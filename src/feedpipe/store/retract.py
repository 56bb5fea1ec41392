"""Store mixin: queued digests and their posts, and moving them off retracted posts (one write)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.model import PENDING, DigestPost, MessageKind, NewEdition, OutboxFill, OutboxState
from feedpipe.model.retract import QueuedDigest, Requeue
from feedpipe.store.outbox import write_transaction
from feedpipe.store.outbox_insert import insert_editions
from feedpipe.store.outbox_record import finish_rows
from feedpipe.store.outbox_tables import editions, outbox
from feedpipe.store.schema import posts
from feedpipe.store.sqlutil import chunked
from feedpipe.store.subscribers import _category_keys, digest_post

_PENDING = [s.value for s in PENDING]


def _unheld(now: datetime) -> sa.ColumnElement[bool]:
    """Queued or retry and leased by no live dispatcher: a claimed row stays `queued` until a
    connection takes it (the in-flight window), and may be on the wire by then."""
    free = sa.or_(outbox.c.lease_until.is_(None), outbox.c.lease_until <= now)
    return sa.and_(outbox.c.state.in_(_PENDING), free)


class RetractMixin:
    """What outbox/retract.py reads and writes."""

    engine: Engine

    def queued_digests(self) -> list[QueuedDigest]:
        """Digest rows that no dispatcher holds (queued or retry), with their edition's posts."""
        stmt = (
            sa.select(
                outbox.c.id, outbox.c.subscriber_id, outbox.c.edition_key, editions.c.post_ids
            )
            .join(editions, editions.c.key == outbox.c.edition_key)
            .where(outbox.c.state.in_(_PENDING), outbox.c.kind == MessageKind.DIGEST.value)
            .order_by(outbox.c.id)
        )
        with self.engine.connect() as conn:
            return [
                QueuedDigest(r.id, r.subscriber_id, r.edition_key, tuple(json.loads(r.post_ids)))
                for r in conn.execute(stmt)
            ]

    def digest_posts_by_ids(self, ids: Sequence[int]) -> list[DigestPost]:
        """The planner's view of these posts (removed ones too)."""
        cols = (posts.c.id, posts.c.first_seen_at, posts.c.published_at, posts.c.draft)
        out: list[DigestPost] = []
        with self.engine.connect() as conn:
            for chunk in chunked(list(ids)):
                rows = conn.execute(
                    sa.select(*cols, posts.c.removed_at).where(posts.c.id.in_(chunk))
                ).all()
                keys = _category_keys(conn, [r.id for r in rows])
                out += [digest_post(r, keys) for r in rows]
        return out

    def requeue_digests(
        self,
        new: Sequence[NewEdition],
        moves: Sequence[Requeue],
        cancel: Sequence[int],
        now: datetime,
    ) -> tuple[int, int]:
        """In one transaction: store the new editions, move rows to them and cancel rows, each
        only while still queued or retry and leased by nobody (a claimed row may be on the
        wire: left alone). A move
        onto an edition the subscriber already has queued cancels the row instead.
        Returns (moved, cancelled)."""
        with write_transaction(self.engine) as conn:
            insert_editions(conn, OutboxFill(now, tuple(new), (), {}))
            taken = {
                (r.subscriber_id, r.edition_key)
                for r in conn.execute(
                    sa.select(outbox.c.subscriber_id, outbox.c.edition_key).where(
                        outbox.c.edition_key.in_(sorted({m.edition_key for m in moves}))
                    )
                )
            }
            moved = 0
            doomed = list(cancel)
            for m in moves:
                if (m.subscriber_id, m.edition_key) in taken:
                    doomed.append(m.outbox_id)
                    continue
                moved += conn.execute(
                    sa.update(outbox)
                    .where(outbox.c.id == m.outbox_id, _unheld(now))
                    .values(edition_key=m.edition_key, message_id=m.message_id, updated_at=now)
                ).rowcount
            cancelled = 0
            for chunk in chunked(sorted(doomed)):
                stmt = finish_rows(chunk, OutboxState.CANCELLED, now)
                cancelled += conn.execute(stmt.where(_unheld(now))).rowcount
        return moved, cancelled
