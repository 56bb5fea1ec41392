"""Subscriber writes the store has no method for yet: schedule/categories, pause and resume.

Pausing has no status of its own yet (SubscriberStatus lacks PAUSED): a paused subscriber is
PENDING with `confirmed_at` set and `unsubscribed_at` empty, so the planner (ACTIVE only) skips
them and resuming needs no new confirmation. Move these into SubscribersMixin when it grows them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from feedpipe.digests.model import Schedule, Subscriber, SubscriberStatus
from feedpipe.store import Store
from feedpipe.store.subscribers import subscribers


def is_paused(sub: Subscriber) -> bool:
    return (
        sub.status is SubscriberStatus.PENDING
        and sub.confirmed_at is not None
        and sub.unsubscribed_at is None
    )


def set_preferences(
    store: Store, subscriber_id: int, schedule: Schedule, categories: Sequence[str]
) -> None:
    """Replace a subscriber's categories (term keys) and schedule."""
    _update(
        store,
        subscriber_id,
        categories=json.dumps(list(categories), ensure_ascii=False),
        frequency=schedule.frequency.value,
        weekday=schedule.weekday,
        send_time=f"{schedule.send_time:%H:%M}",
        timezone=schedule.timezone,
    )


def pause(store: Store, subscriber_id: int) -> None:
    """Stop digests of an active subscriber until `resume`."""
    _update(store, subscriber_id, SubscriberStatus.ACTIVE, status=SubscriberStatus.PENDING.value)


def resume(store: Store, subscriber_id: int, at: datetime) -> None:
    """Restart a paused subscriber; posts from the pause are skipped (watermark moves to now)."""
    _update(
        store,
        subscriber_id,
        SubscriberStatus.PENDING,
        subscribers.c.confirmed_at.is_not(None),
        status=SubscriberStatus.ACTIVE.value,
        watermark=sa.func.max(subscribers.c.watermark, at)
        if store.dialect == "sqlite"
        else sa.func.greatest(subscribers.c.watermark, at),
    )


def resubscribe(store: Store, subscriber_id: int, at: datetime) -> None:
    """An unsubscribed address asks again: pending, awaiting a new confirmation."""
    _update(
        store,
        subscriber_id,
        SubscriberStatus.UNSUBSCRIBED,
        status=SubscriberStatus.PENDING.value,
        confirmed_at=None,
        watermark=at,
    )


def _update(
    store: Store,
    subscriber_id: int,
    only_if: SubscriberStatus | None = None,
    *where: sa.ColumnElement[bool],
    **values: object,
) -> None:
    stmt = sa.update(subscribers).where(subscribers.c.id == subscriber_id, *where).values(values)
    if only_if is not None:
        stmt = stmt.where(subscribers.c.status == only_if.value)
    with store.engine.begin() as conn:
        conn.execute(stmt)
