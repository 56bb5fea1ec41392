"""Frozen types of the web's durable intake: a public-form request stored before its reply."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class IntakeKind(enum.StrEnum):
    """What a stored request asks for."""

    SUBSCRIBE = "subscribe"  # POST /subscribe, /api/subscribe: double opt-in
    LINKS = "links"  # POST /unsubscribe: mail an address its own links


@dataclass(frozen=True, slots=True)
class IntakeRequest:
    """One accepted request waiting for its work (docs/web.md "Durable intake").

    `payload` is the request's fields as JSON text; `attempts` counts the times another
    process took it over after its owner died or let its lease run out: above 0, part of the
    work may have been done already, and the replay must not repeat a message."""

    id: int
    kind: IntakeKind
    payload: str
    accepted_at: datetime
    attempts: int = 0

    @property
    def replayed(self) -> bool:
        return self.attempts > 0
