"""Subscribe timing per address state (the enumeration check): raw ASGI requests, interleaved
across states, medians compared. Imports only what every version of the app has, so
benchmarks/subscribe_enumeration.py can measure the code before a change too."""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from datetime import time as clock_time
from typing import Any

import anyio

from feedpipe.model import Frequency, NewSubscriber, Schedule, SubscriberStatus
from feedpipe.store import Store

STATES = ("new", "pending", "unsubscribed", "active", "bounced", "paused")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def seed(store: Store, prefix: str, per_state: int) -> dict[str, list[str]]:
    """`per_state` addresses in each state (the "new" ones are not stored)."""
    schedule = Schedule(Frequency.DAILY, 0, clock_time(8, 0), "UTC")
    pools = {s: [f"{prefix}-{s}-{i}@example.com" for i in range(per_state)] for s in STATES}
    rows = [
        NewSubscriber(
            address, None, SubscriberStatus(state), (), schedule, T0,
            confirmed_at=None if state == "pending" else T0,
            unsubscribed_at=T0 if state == "unsubscribed" else None,
        )
        for state, addresses in pools.items() if state != "new"
        for address in addresses
    ]  # fmt: skip
    assert store.import_subscribers(rows) == []
    return pools


async def _post(app: Any, path: str, body: bytes, client: str) -> int:
    sent: list[Mapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": (client, 40000), "server": ("news.example.com", 443),
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"host", b"news.example.com")],
    }  # fmt: skip
    await app(scope, receive, send)
    return int(sent[0]["status"])


def post_json(app: Any, path: str, payload: object, client: str = "127.0.0.1") -> int:
    """One JSON POST straight into the ASGI app from `client`; the status."""
    return anyio.run(_post, app, path, json.dumps(payload).encode(), client)


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds of POST /api/subscribe per state; `rounds[i][state]`: round i's request."""

    rounds: list[dict[str, float]]

    def medians(self) -> dict[str, float]:
        """Each state's median."""
        return {s: statistics.median(r[s] for r in self.rounds) for s in self.rounds[0]}

    def relative(self) -> dict[str, float]:
        """Each state's median difference from its round's median: a load that slows a whole
        round (the machine is shared) cancels out, a state that is slower does not."""
        centre = [statistics.median(r.values()) for r in self.rounds]
        return {
            s: statistics.median(r[s] - c for r, c in zip(self.rounds, centre, strict=True))
            for s in self.rounds[0]
        }


def measure(app: Any, pools: Mapping[str, Sequence[str]], rng: random.Random) -> Timings:
    """POST /api/subscribe for every address, interleaved: each round takes one address of
    every state, in a shuffled order."""
    rounds: list[dict[str, float]] = []

    async def run() -> None:
        for index in range(min(len(p) for p in pools.values())):
            order = list(pools)
            rng.shuffle(order)
            found: dict[str, float] = {}
            for state in order:
                body = json.dumps({"email": pools[state][index]}).encode()
                started = time.perf_counter()
                status = await _post(app, "/api/subscribe", body, "127.0.0.1")
                found[state] = (time.perf_counter() - started) * 1000
                assert status == 202, (state, status)
            rounds.append({s: found[s] for s in pools})

    anyio.run(run)
    return Timings(rounds)


def spread(found: Mapping[str, float]) -> float:
    """Largest difference between two states' medians (ms)."""
    return max(found.values()) - min(found.values())
