"""Store mixin for WebSub: the hub's subscriptions (a table) and each hub's last publish (meta)."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from feedpipe.model.websub import HubSubscription, PublishState
from feedpipe.store.meta import MetaMixin
from feedpipe.store.schema import metadata
from feedpipe.store.sqlutil import dialect_insert
from feedpipe.store.types import UTCDateTime

PUBLISH_PREFIX = "websub.publish."  # + a digest of the hub URL: PublishState JSON

websub_subscriptions = sa.Table(
    "websub_subscriptions",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),  # sha256 of topic and callback
    sa.Column("topic_key", sa.String(64), nullable=False, index=True),  # sha256 of the topic
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("callback", sa.Text, nullable=False),
    sa.Column("secret", sa.Text),
    sa.Column("lease_seconds", sa.Integer, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
_t = websub_subscriptions


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _row(row: sa.Row[tuple[object, ...]]) -> HubSubscription:
    m = row._mapping
    return HubSubscription(
        m["topic"], m["callback"], m["secret"], m["lease_seconds"], m["expires_at"], m["created_at"]
    )


class WebsubMixin(MetaMixin):
    """Subscriptions keyed by (topic, callback): a renewal replaces the lease and secret."""

    engine: Engine

    def save_hub_subscription(self, sub: HubSubscription) -> None:
        """Insert the subscription, or renew it (lease, secret) when it exists."""
        values = {
            "key": _digest(sub.topic, sub.callback),
            "topic_key": _digest(sub.topic),
            "topic": sub.topic,
            "callback": sub.callback,
            "secret": sub.secret,
            "lease_seconds": sub.lease_seconds,
            "expires_at": sub.expires_at,
            "created_at": sub.created_at,
        }
        renew = {k: values[k] for k in ("secret", "lease_seconds", "expires_at")}
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, _t).values(**values)
            conn.execute(stmt.on_conflict_do_update(index_elements=[_t.c.key], set_=renew))

    def remove_hub_subscription(self, topic: str, callback: str) -> bool:
        """Forget one subscription; False if there was none."""
        with self.engine.begin() as conn:
            done = conn.execute(sa.delete(_t).where(_t.c.key == _digest(topic, callback)))
        return bool(done.rowcount)

    def hub_subscriptions(self, topic: str, now: datetime) -> list[HubSubscription]:
        """The subscriptions of `topic` whose lease has not run out at `now`."""
        stmt = (
            sa.select(_t)
            .where(_t.c.topic_key == _digest(topic), _t.c.expires_at > now)
            .order_by(_t.c.created_at, _t.c.callback)
        )
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(stmt)]

    def expire_hub_subscriptions(self, now: datetime) -> int:
        """Delete every subscription whose lease ran out by `now`; how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.delete(_t).where(_t.c.expires_at <= now)).rowcount)

    def put_publish_state(self, state: PublishState) -> None:
        """Record the last publish to `state.hub`."""
        self.set_meta(PUBLISH_PREFIX + _digest(state.hub)[:32], state.to_json())

    def publish_states(self) -> dict[str, PublishState]:
        """The last publish to each hub, by hub URL."""
        found = [PublishState.from_json(v) for v in self.meta_with_prefix(PUBLISH_PREFIX).values()]
        return {s.hub: s for s in sorted(found, key=lambda s: s.hub)}
