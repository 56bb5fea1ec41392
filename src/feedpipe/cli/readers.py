"""`feedpipe status --readers`: who fetches the feeds, as a table or JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from feedpipe.cli.textgrid import table
from feedpipe.model.readers import ReaderRow

HEADERS = ("feed", "aggregator", "subscribers", "last seen", "304 ratio", "fetches", "validators")


def readers_table(rows: Sequence[ReaderRow]) -> str:
    """One line per feed and aggregator; `validators` says never for a client that sends none."""
    if not rows:
        return "no feed fetches recorded yet (feedpipe serve counts them)"
    cells = [
        (
            r.feed,
            r.aggregator,
            "-" if r.subscribers is None else str(r.subscribers),
            r.last_seen.strftime("%Y-%m-%d %H:%M UTC"),
            f"{r.ratio_304:.0%}",
            str(r.fetches),
            "never" if r.never_conditional else "yes",
        )
        for r in rows
    ]
    total = sum(r.subscribers or 0 for r in rows)
    return table(HEADERS, cells) + f"\n{total} subscribers announced in all"


def readers_json(rows: Sequence[ReaderRow]) -> list[dict[str, Any]]:
    return [
        {
            "feed": r.feed,
            "aggregator": r.aggregator,
            "subscribers": r.subscribers,
            "last_seen": _iso(r.last_seen),
            "fetches": r.fetches,
            "not_modified": r.not_modified,
            "conditional": r.conditional,
            "ratio_304": round(r.ratio_304, 4),
        }
        for r in rows
    ]


def _iso(when: datetime) -> str:
    return when.isoformat()
