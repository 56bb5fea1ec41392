"""Store mixin: the web's durable intake (public-form requests stored before their reply)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.model import MessageKind
from feedpipe.model.intake import IntakeKind, IntakeRequest
from feedpipe.store.outbox import write_transaction
from feedpipe.store.outbox_tables import outbox
from feedpipe.store.schema import metadata
from feedpipe.store.types import UTCDateTime

subscribe_intake = sa.Table(
    "subscribe_intake",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the request's fields, JSON
    sa.Column("accepted_at", UTCDateTime, nullable=False),
    # the process handling it; another may take it once the lease ends (or the owner is gone)
    sa.Column("lease_owner", sa.String(64), nullable=False, index=True),
    sa.Column("lease_until", UTCDateTime, nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),  # take-overs so far
)
_t = subscribe_intake.c


def _request(row: Any) -> IntakeRequest:
    return IntakeRequest(row.id, IntakeKind(row.kind), row.payload, row.accepted_at, row.attempts)


class IntakeMixin:
    """Rows written by a `feedpipe serve` request, done and deleted by its intake thread."""

    engine: Engine

    def add_intake(
        self,
        kind: IntakeKind,
        payload: str,
        owner: str,
        now: datetime,
        until: datetime,
        cap: int,
    ) -> bool:
        """Store one request leased to `owner` until `until`, unless `cap` wait already
        (False). One short transaction whose work does not depend on the request's content."""
        waiting = sa.select(sa.func.count()).select_from(sa.select(_t.id).limit(cap).subquery())
        row = {
            "kind": kind.value,
            "payload": payload,
            "accepted_at": now,
            "lease_owner": owner,
            "lease_until": until,
            "attempts": 0,
        }
        with write_transaction(self.engine) as conn:
            if int(conn.execute(waiting).scalar_one()) >= cap:
                return False
            conn.execute(sa.insert(subscribe_intake).values(row))
        return True

    def intake_owned(self, owner: str, limit: int) -> list[IntakeRequest]:
        """The oldest `limit` requests leased to `owner`, oldest first."""
        stmt = sa.select(subscribe_intake).where(_t.lease_owner == owner).order_by(_t.id)
        with self.engine.connect() as conn:
            return [_request(r) for r in conn.execute(stmt.limit(limit))]

    def intake_owners(self) -> dict[str, datetime]:
        """Every owner holding requests, with the latest end of its leases."""
        stmt = sa.select(_t.lease_owner, sa.func.max(_t.lease_until)).group_by(_t.lease_owner)
        with self.engine.connect() as conn:
            return {str(o): u for o, u in conn.execute(stmt)}

    def renew_intake(self, owner: str, until: datetime) -> int:
        """Move the lease of every request `owner` holds to `until`; how many it holds."""
        stmt = sa.update(subscribe_intake).where(_t.lease_owner == owner)
        with write_transaction(self.engine) as conn:
            return int(conn.execute(stmt.values(lease_until=until)).rowcount)

    def claim_intake(
        self, owner: str, until: datetime, now: datetime, gone: Sequence[str], limit: int
    ) -> int:
        """Lease to `owner` up to `limit` requests whose lease ended or whose owner is in
        `gone` (a dead process), counting an attempt on each; how many were taken. A request
        is taken by one process only (the lease is checked again as it is moved)."""
        takeable = sa.or_(_t.lease_until <= now, _t.lease_owner.in_(list(gone)))
        pick = sa.select(_t.id).where(takeable).order_by(_t.id).limit(limit)
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            ids = list(conn.execute(pick).scalars())
            if not ids:
                return 0
            stmt = (
                sa.update(subscribe_intake)
                .where(_t.id.in_(ids), takeable)
                .values(lease_owner=owner, lease_until=until, attempts=_t.attempts + 1)
            )
            return int(conn.execute(stmt).rowcount)

    def finish_intake(self, request_id: int, owner: str) -> bool:
        """Delete a request whose work is done; False when `owner` no longer held it."""
        stmt = sa.delete(subscribe_intake).where(_t.id == request_id, _t.lease_owner == owner)
        with write_transaction(self.engine) as conn:
            return bool(conn.execute(stmt).rowcount)

    def intake_count(self) -> int:
        """Requests waiting (taken or not)."""
        with self.engine.connect() as conn:
            stmt = sa.select(sa.func.count()).select_from(subscribe_intake)
            return int(conn.execute(stmt).scalar_one())

    def queued_since(self, subscriber_id: int, kind: MessageKind, since: datetime) -> bool:
        """Whether a message of `kind` to the subscriber was queued at or after `since` (a
        replayed request's email may have gone into the outbox before its owner died)."""
        stmt = (
            sa.select(outbox.c.id)
            .where(
                outbox.c.subscriber_id == subscriber_id,
                outbox.c.kind == kind.value,
                outbox.c.created_at >= since,
            )
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(stmt).first() is not None
