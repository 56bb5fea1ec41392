"""The digest benchmark's site: 50 posts synced into a real store, N subscribers bulk-loaded.

Subscribers are generated and imported 10,000 at a time (`Store.import_subscribers`, then
`advance_watermarks` on the ids the page read gives back), so a million never sit in memory.
Every subscriber is due at NOW: their slot was half an hour ago in one of three zones, their
watermark a day ago; `mix` makes a fifth each daily, weekly, monthly, instant and daily holding
for 3 posts (min_posts), all due now.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

from feedpipe.clock import FixedClock
from feedpipe.model import Frequency, NewSubscriber, Schedule, SubscriberStatus
from feedpipe.service import Feedpipe
from feedpipe.settings import Settings, settings_from_mapping

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
POSTS = 50
CATEGORY_SETS = 200
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata")
CATEGORIES = [
    "Distributed Systems", "Rust", "Databases", "AI/ML", "Frontend", "Security",
    "Networking", "Cloud", "Performance", "Architecture", "DevOps", "Mobile",
]  # fmt: skip
WORDS = [
    "latency", "cache", "shard", "replica", "queue", "kernel",
    "compiler", "vector", "index", "schema", "lock", "lease",
]  # fmt: skip
LOAD_BATCH = 10_000
SECRET = {"FEEDPIPE_SECRET_KEY": "bench-secret"}


def settings(root: Path, store_url: str) -> Settings:
    data = {
        "site": {"title": "Blog 002", "url": "https://blog.example.com"},
        "source": {"path": str(root / "posts")},
        "store": {"url": store_url},
        "email": {
            "from_address": "digest@blog.example.com",
            "from_name": "Blog 002",
            "unsubscribe_mailto": "unsubscribe@blog.example.com",
        },
        "web": {"base_url": "https://news.example.com"},
    }
    return settings_from_mapping(data, root, "benchmark", SECRET)


def write_posts(folder: Path, rng: random.Random) -> None:
    """50 posts published in the last day, 1–2 categories, ~250-char summaries, ~5 KB bodies."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, POSTS + 1):
        published = NOW - timedelta(hours=23) + timedelta(minutes=n)
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        categories = rng.sample(CATEGORIES, rng.choice((1, 2)))
        front = (
            f'title: "Post {n}: {words[:60].title()}"\ndate: {published.isoformat()}\n'
            f'summary: "{words[:250]}"\ncategories: {json.dumps(categories)}\n'
            'author: "Ann Author"\n'
        )
        body = "\n\n".join([words] * 20)
        (folder / f"post-{n}.md").write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")


def category_sets(rng: random.Random) -> list[tuple[str, ...]]:
    """200 distinct sets of category keys (one is "everything")."""
    keys = [c.casefold() for c in CATEGORIES]
    sets: set[tuple[str, ...]] = {()}
    while len(sets) < CATEGORY_SETS:
        sets.add(tuple(sorted(rng.sample(keys, rng.randint(1, 4)))))
    return sorted(sets)


def name_of(n: int) -> str | None:
    return (None, f"Reader {n}", f"Zoë Müller {n}")[n % 3]


def send_times() -> dict[str, datetime]:
    """Per zone, the local time half an hour ago: every subscriber's slot has just passed (a
    slot further back than [digest] late_after would be merged into the next one)."""
    return {zone: (NOW - timedelta(minutes=30)).astimezone(ZoneInfo(zone)) for zone in ZONES}


def schedule(n: int, zone: str, local: datetime, mix: bool) -> Schedule:
    at = clock_time(local.hour, local.minute)
    kind = n % 5 if mix else 0
    if kind == 1:
        return Schedule(Frequency.WEEKLY, local.weekday(), at, zone)
    if kind == 2:
        return Schedule(Frequency.MONTHLY, 0, at, zone, month_day=min(local.day, 28))
    if kind == 3:
        return Schedule(Frequency.INSTANT, 0, at, zone)
    if kind == 4:
        return Schedule(Frequency.DAILY, 0, at, zone, min_posts=3, max_wait=timedelta(days=7))
    return Schedule(Frequency.DAILY, 0, at, zone)


def new_subscribers(count: int, rng: random.Random, mix: bool) -> Iterator[list[NewSubscriber]]:
    """Batches of LOAD_BATCH subscribers, active since a month."""
    sets = category_sets(rng)
    local = send_times()
    since = NOW - timedelta(days=31)
    batch: list[NewSubscriber] = []
    for n in range(1, count + 1):
        zone = ZONES[n % len(ZONES)]
        batch.append(
            NewSubscriber(
                email=f"reader{n}@example.org",
                name=name_of(n),
                status=SubscriberStatus.ACTIVE,
                categories=sets[n % len(sets)],
                schedule=schedule(n, zone, local[zone], mix),
                created_at=since,
                confirmed_at=since,
            )
        )
        if len(batch) == LOAD_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def build(root: Path, store_url: str, count: int, mix: bool) -> int:
    """Posts synced at NOW - 22 h, then `count` subscribers; returns how many were stored."""
    rng = random.Random(2026)
    write_posts(root / "posts", rng)
    day_ago = NOW - timedelta(days=1)
    stored = after = 0
    clock = FixedClock(NOW - timedelta(hours=22))
    with Feedpipe.from_settings(settings(root, store_url), clock) as fp:
        fp.sync()
        for batch in new_subscribers(count, rng, mix):
            fp.store.import_subscribers(batch)
            page, last = fp.store.subscriber_page(after, len(batch))  # the batch just stored
            fp.store.advance_watermarks({s.id: day_ago for s in page})
            stored, after = stored + len(page), last or after
    return stored
