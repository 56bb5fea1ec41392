"""The circuit breaker per transport: pure state transitions, persisted as JSON in `meta`."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from feedpipe.mail import Delivery, Outcome, fix_for

META_PREFIX = "breaker:"
FIRST_PROBE = timedelta(minutes=1)
MAX_PROBE = timedelta(hours=1)
WINDOW = timedelta(hours=1)  # distinct recipients with a sender/policy reply are counted over this


class Gate(enum.StrEnum):
    """What the breaker allows now."""

    OPEN_FOR_SENDING = "sending"  # closed breaker: send as usual
    PROBE = "probe"  # paused, and one message may go to see whether it was fixed
    PAUSED = "paused"  # paused: attempt nothing


@dataclass(frozen=True, slots=True)
class BreakerLimits:
    """When the breaker opens: `streak` replies in a row or `recipients` distinct ones."""

    streak: int = 5
    recipients: int = 20
    window: timedelta = WINDOW
    first_probe: timedelta = FIRST_PROBE
    max_probe: timedelta = MAX_PROBE


@dataclass(frozen=True, slots=True)
class Breaker:
    """The breaker of one transport. `paused` holds the reply that opened it."""

    paused: str | None = None
    streak: int = 0  # sender/policy replies in a row (a message sent resets it)
    recent: tuple[tuple[str, datetime], ...] = ()  # recipients refused that way, newest last
    since: datetime | None = None
    probe_at: datetime | None = None
    probe_delay: timedelta = FIRST_PROBE
    probes: int = 0  # failed probes since it opened

    @property
    def is_open(self) -> bool:
        return self.paused is not None

    @property
    def fix(self) -> str:
        return fix_for(self.paused or "")

    def gate(self, now: datetime) -> Gate:
        if self.paused is None:
            return Gate.OPEN_FOR_SENDING
        if self.probe_at is not None and now >= self.probe_at:
            return Gate.PROBE
        return Gate.PAUSED

    def observe(
        self, delivery: Delivery, recipient: str, now: datetime, limits: BreakerLimits
    ) -> Breaker:
        """The breaker after one delivery (a probe's result when paused)."""
        outcome = delivery.outcome
        if outcome is Outcome.UNSENT:
            return self
        if self.paused is not None:
            return self._probed(outcome is Outcome.SENT, now, limits)
        if outcome is Outcome.SENT:
            return replace(self, streak=0) if self.streak else self
        if outcome is not Outcome.BLOCKED:
            return self
        reply = describe(delivery)
        recent = tuple((r, t) for r, t in self.recent if r != recipient and now - t < limits.window)
        recent = (*recent, (recipient, now))[-limits.recipients :]
        streak = self.streak + 1
        if streak >= limits.streak or len(recent) >= limits.recipients:
            return Breaker(reply, streak, recent, now, now + limits.first_probe, limits.first_probe)
        return replace(self, streak=streak, recent=recent)

    def _probed(self, sent: bool, now: datetime, limits: BreakerLimits) -> Breaker:
        if sent:
            return Breaker()
        delay = min(self.probe_delay * 2, limits.max_probe)
        return replace(self, probe_at=now + delay, probe_delay=delay, probes=self.probes + 1)

    def to_json(self) -> str:
        return json.dumps(
            {
                "paused": self.paused,
                "streak": self.streak,
                "recent": [[r, t.isoformat()] for r, t in self.recent],
                "since": _iso(self.since),
                "probe_at": _iso(self.probe_at),
                "probe_delay": self.probe_delay.total_seconds(),
                "probes": self.probes,
            }
        )

    @classmethod
    def from_json(cls, text: str | None) -> Breaker:
        """The stored breaker; a missing or unreadable value is a closed breaker."""
        if not text:
            return cls()
        try:
            data: dict[str, Any] = json.loads(text)
            return cls(
                data.get("paused"),
                int(data.get("streak", 0)),
                tuple((str(r), datetime.fromisoformat(t)) for r, t in data.get("recent", ())),
                _dt(data.get("since")),
                _dt(data.get("probe_at")),
                timedelta(seconds=float(data.get("probe_delay", FIRST_PROBE.total_seconds()))),
                int(data.get("probes", 0)),
            )
        except (ValueError, TypeError, KeyError):
            return cls()


def describe(delivery: Delivery) -> str:
    """`<code> <reply>` on one line, as `sending paused: …` quotes it."""
    text = " ".join(delivery.reply.split())[:300]
    return f"{delivery.code} {text}" if delivery.code is not None else text


def meta_key(transport: str) -> str:
    return META_PREFIX + transport


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))
