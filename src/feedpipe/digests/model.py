"""Frozen types of the digest planner's decisions: plans and editions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from feedpipe.model import EditionContent


@dataclass(frozen=True, slots=True)
class PlannedEdition:
    """One edition and every subscriber who gets it."""

    content: EditionContent
    subscriber_ids: tuple[int, ...]

    @property
    def key(self) -> str:
        return self.content.key


@dataclass(frozen=True, slots=True)
class Plan:
    """What one planner run decided: editions to send and the new watermark of every due one."""

    now: datetime
    editions: tuple[PlannedEdition, ...] = ()
    watermarks: Mapping[int, datetime] = field(default_factory=dict)
    first: frozenset[int] = frozenset()  # subscribers getting their first digest

    @property
    def recipient_count(self) -> int:
        return sum(len(e.subscriber_ids) for e in self.editions)
