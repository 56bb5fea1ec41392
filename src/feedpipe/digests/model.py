"""Frozen types of the digest planner's decisions: plans and editions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feedpipe.model import Advance, EditionContent, Outcome


@dataclass(frozen=True, slots=True)
class Rules:
    """The site-wide digest rules ([digest] settings) the planner applies to everyone."""

    max_posts: int = 30
    instant_delay: timedelta = timedelta(minutes=5)
    late_after: timedelta = timedelta(hours=6)
    backdated: timedelta = timedelta(days=7)


DEFAULT_RULES = Rules()


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
    """What one planner run decided: editions to send and how every due subscriber moves."""

    now: datetime
    editions: tuple[PlannedEdition, ...] = ()
    advances: Mapping[int, Advance] = field(default_factory=dict)
    first: frozenset[int] = frozenset()  # subscribers getting their first digest
    # New next_due_at of the subscribers planned whose stored one differs (all those who
    # move, and those read with none known yet)
    next_due: Mapping[int, datetime] = field(default_factory=dict)

    @property
    def watermarks(self) -> dict[int, datetime]:
        """New watermarks (subscribers sent a digest, or with nothing new)."""
        return {i: a.watermark for i, a in self.advances.items() if a.watermark is not None}

    def count(self, outcome: Outcome) -> int:
        return Counter(a.outcome for a in self.advances.values())[outcome]

    @property
    def recipient_count(self) -> int:
        return sum(len(e.subscriber_ids) for e in self.editions)
