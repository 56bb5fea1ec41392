"""Rates that matter to Gmail and Yahoo: bounces and complaints per edition and over 7 / 30
days; above `[email] complaint_rate_limit` the breaker pauses sending with that reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from feedpipe.model.hygiene import Rates
from feedpipe.outbox.breaker import Breaker, meta_key
from feedpipe.store import Store

WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30)}
PAUSE_WINDOW = "7d"
ACK_KEY = "rates:acknowledged"  # `feedpipe outbox resume`: complaints before this are accepted
EDITIONS = 5


@dataclass(frozen=True, slots=True)
class Deliverability:
    """Rates over the windows and for the last editions sent."""

    windows: tuple[Rates, ...]
    editions: tuple[Rates, ...]


def complaint_pause(rates: Rates, limit: float, min_sent: int) -> str | None:
    """The reason to pause (pure), or None: too many complaints among enough messages."""
    if rates.sent < min_sent or rates.complaint_rate <= limit:
        return None
    return (
        f"complaint rate {rates.complaint_rate:.2%} over {rates.label} ({rates.complaints} of "
        f"{rates.sent} messages) is above {limit:.2%}"
    )


def deliverability(store: Store, now: datetime) -> Deliverability:
    windows = tuple(store.rates_since(now - span, label) for label, span in WINDOWS.items())
    return Deliverability(windows, tuple(store.rates_by_edition(EDITIONS)))


def check(store: Store, transport: str, now: datetime, limit: float, min_sent: int) -> Breaker:
    """Open the transport's breaker (no probes: an operator resumes) when the complaint rate
    since the last `outbox resume` (at most 7 days back) is above `limit`; the breaker."""
    breaker = Breaker.from_json(store.get_meta(meta_key(transport)))
    if breaker.is_open:
        return breaker
    since = now - WINDOWS[PAUSE_WINDOW]
    acknowledged = store.get_meta(ACK_KEY)
    if acknowledged:
        since = max(since, datetime.fromisoformat(acknowledged))
    reason = complaint_pause(store.rates_since(since, PAUSE_WINDOW), limit, min_sent)
    if reason is None:
        return breaker
    paused = Breaker(paused=reason, since=now, probe_at=None)
    store.set_meta(meta_key(transport), paused.to_json())
    return paused


def _rates(r: Rates) -> dict[str, Any]:
    return {
        "sent": r.sent,
        "bounces": r.bounces,
        "complaints": r.complaints,
        "bounce_rate": round(r.bounce_rate, 6),
        "complaint_rate": round(r.complaint_rate, 6),
    }


def to_json(found: Deliverability, limit: float, inbound: Mapping[str, int]) -> dict[str, Any]:
    """What `feedpipe status --json`, the metrics and /api/admin/deliverability show."""
    return {
        "windows": {r.label: _rates(r) for r in found.windows},
        "editions": [{"edition": r.label, **_rates(r)} for r in found.editions],
        "complaint_rate_limit": limit,
        "inbound": dict(inbound),
    }
