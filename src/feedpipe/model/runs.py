"""Worker run records: the last sync/build/plan/dispatch of any worker, and their JSON form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from feedpipe.clock import ensure_utc

JOBS = ("sync", "build", "publish", "plan", "dispatch")
Counts = Mapping[str, int | float]


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of one job: when, how long, how it ended, what it counted."""

    job: str
    worker: str
    started_at: datetime
    seconds: float
    outcome: str  # "ok" | "error"
    counts: Mapping[str, int | float] = field(default_factory=dict)
    error: str | None = None
    last_ok_at: datetime | None = None  # the last successful run of this job, by any worker

    def to_json(self) -> str:
        data: dict[str, Any] = asdict(self)
        data["counts"] = dict(self.counts)
        data["started_at"] = self.started_at.isoformat()
        data["last_ok_at"] = self.last_ok_at.isoformat() if self.last_ok_at else None
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        data = json.loads(text)
        data["started_at"] = ensure_utc(datetime.fromisoformat(data["started_at"]))
        last = data.get("last_ok_at")
        data["last_ok_at"] = ensure_utc(datetime.fromisoformat(last)) if last else None
        return cls(**data)
