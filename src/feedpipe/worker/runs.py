"""Run records: the last sync/build/plan/dispatch of any worker, as JSON in the `meta` table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from feedpipe.clock import ensure_utc
from feedpipe.store.schema import meta

PREFIX = "run."
JOBS = ("sync", "build", "plan", "dispatch")
LEADER_KEY = "worker.leader"
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


def put_meta(engine: Engine, key: str, value: str) -> None:
    """Insert or replace one meta value atomically (safe with several workers at once)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            pg = postgresql.insert(meta).values(key=key, value=value)
            conn.execute(
                pg.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value})
            )
            return
        lite = sqlite.insert(meta).values(key=key, value=value)
        conn.execute(lite.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value}))


def read_meta(engine: Engine, prefix: str) -> dict[str, str]:
    """Every meta value whose key starts with `prefix`."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(meta.c.key, meta.c.value).where(meta.c.key.startswith(prefix))
        )
        return {str(k): str(v) for k, v in rows}


class RunLog:
    """Writes and reads run records for one store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, run: RunRecord) -> RunRecord:
        """Store `run` as the job's last run, carrying the last success time forward."""
        if run.outcome == "ok":
            run = replace(run, last_ok_at=run.started_at)
        else:
            previous = self.last().get(run.job)
            run = replace(run, last_ok_at=previous.last_ok_at if previous else None)
        put_meta(self.engine, PREFIX + run.job, run.to_json())
        return run

    def last(self) -> dict[str, RunRecord]:
        """The last run of each job, by job name."""
        out: dict[str, RunRecord] = {}
        for key, value in read_meta(self.engine, PREFIX).items():
            try:
                out[key[len(PREFIX) :]] = RunRecord.from_json(value)
            except (ValueError, TypeError, KeyError):
                continue  # a record from another version: ignore it
        return out
