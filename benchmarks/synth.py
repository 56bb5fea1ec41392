"""Synthetic posts for benchmarks: ~5 KB Markdown bodies, 40 categories, a few tags each."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

CATEGORIES = [f"Category {i:02d}" for i in range(40)]
TAGS = [f"tag-{i:03d}" for i in range(120)]
WORDS = [
    "latency",
    "throughput",
    "cache",
    "shard",
    "replica",
    "queue",
    "kernel",
    "compiler",
    "vector",
    "index",
    "schema",
    "migration",
    "lock",
    "lease",
    "consensus",
    "quorum",
    "packet",
    "socket",
    "thread",
    "fiber",
]


def body(rng: random.Random) -> str:
    parts: list[str] = []
    while sum(len(p) for p in parts) < 5000:
        words = " ".join(rng.choice(WORDS) for _ in range(60))
        parts.append(f"## {rng.choice(WORDS).title()}\n\n{words} [link](/posts/x/) **bold**.\n")
        parts.append("```python\nprint('hello')\n```\n")
    return "\n".join(parts)


def post_text(i: int, rng: random.Random, start: datetime) -> str:
    cats = rng.sample(CATEGORIES, 2)
    tags = rng.sample(TAGS, 3)
    date = (start - timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    summary = " ".join(rng.choice(WORDS) for _ in range(40))
    return (
        f'---\ntitle: "Post {i}: {rng.choice(WORDS)} & {rng.choice(WORDS)}"\n'
        f'slug: post-{i}\ndate: {date}\nsummary: "{summary}"\n'
        f"categories: [{', '.join(cats)}]\ntags: [{', '.join(tags)}]\n---\n{body(rng)}"
    )


def write_posts(
    folder: Path, count: int, seed: int = 7, first: int = 0, newest: bool = False
) -> None:
    """Write `count` posts numbered from `first` into `folder` (hourly, older as i grows;
    `newest` dates them after every other post instead)."""
    rng = random.Random(seed + first)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    if newest:
        start += timedelta(seconds=first + count + 1)  # after all, yet not in the future
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        (folder / f"post-{i}.md").write_text(post_text(i, rng, start), encoding="utf-8")
