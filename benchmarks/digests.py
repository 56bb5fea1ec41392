"""Digest benchmark: 100k subscribers, plan + render once per edition + personalise to bytes.

`--mix`: a fifth each daily, weekly, monthly, instant and min_posts subscribers."""

from __future__ import annotations

import gc
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from feedpipe.emails.inline import Inliner, inline_css
from feedpipe.emails.render import EmailRenderer, RenderedEdition, personalize
from feedpipe.emails.views import RecipientView
from feedpipe.model import EditionContent, Post, Recipient, Term, TermKind
from feedpipe.settings import Settings, parse_settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.naive_email: the baseline

from tests.naive_email import render_message

SUBSCRIBERS = 100_000
CATEGORY_SETS = 200
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata")
POSTS = 50
CATEGORIES = [
    "Distributed Systems", "Rust", "Databases", "AI/ML", "Frontend", "Security",
    "Networking", "Cloud", "Performance", "Architecture", "DevOps", "Mobile",
]  # fmt: skip
BASELINE_SAMPLE = 50
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
WORDS = [
    "latency", "cache", "shard", "replica", "queue", "kernel",
    "compiler", "vector", "index", "schema", "lock", "lease",
]  # fmt: skip


def settings() -> Settings:
    return parse_settings(
        {
            "site": {"title": "Blog 002", "url": "https://blog.example.com"},
            "email": {
                "from_address": "digest@blog.example.com",
                "from_name": "Blog 002",
                "unsubscribe_mailto": "unsubscribe@blog.example.com",
            },
            "web": {"base_url": "https://news.example.com"},
        }
    )


def term(name: str) -> Term:
    return Term(TermKind.CATEGORY, name, name.casefold(), name.lower().replace("/", "-"))


def make_posts(rng: random.Random) -> list[Post]:
    """50 posts first seen in the last day, 1–2 categories, ~250-char summaries, ~5 KB bodies."""
    posts = []
    for n in range(1, POSTS + 1):
        seen = NOW - timedelta(hours=23) + timedelta(minutes=n)
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        posts.append(
            Post(
                id=n,
                guid=f"urn:post:{n}",
                slug=f"post-{n}",
                url=f"https://blog.example.com/posts/post-{n}-about-{rng.choice(WORDS)}/",
                title=f"Post {n}: {words[:60].title()}",
                summary=words[:250],
                content_html="<p>" + words * 20 + "</p>",
                published=seen,
                updated=None,
                categories=tuple(term(c) for c in rng.sample(CATEGORIES, rng.choice((1, 2)))),
                tags=(),
                author="Ann Author",
                image=None,
                image_alt=None,
                reading_time=rng.randint(3, 15),
                draft=False,
                content_hash=f"h{n}",
                first_seen_at=seen,
            )
        )
    return posts


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
    from zoneinfo import ZoneInfo

    return {zone: (NOW - timedelta(minutes=30)).astimezone(ZoneInfo(zone)) for zone in ZONES}


def subscribers(rng: random.Random, mix: bool = False) -> list[Any]:
    """100k active daily subscribers in 3 zones, due now, watermark a day ago; with `mix`, a
    fifth each daily, weekly, monthly, instant (due by the send-time catch-up) and daily
    holding for 3 posts (min_posts), all due now."""
    from feedpipe.model import Frequency, Subscriber, SubscriberStatus

    sets = category_sets(rng)
    day_ago = NOW - timedelta(days=1)
    local = send_times()
    subs = []
    for n in range(1, SUBSCRIBERS + 1):
        zone = ZONES[n % len(ZONES)]
        sub = Subscriber(
            id=n,
            email=f"reader{n}@example.org",
            name=name_of(n),
            status=SubscriberStatus.ACTIVE,
            categories=sets[n % len(sets)],
            frequency=Frequency.DAILY,
            weekday=0,
            send_time=clock_time(local[zone].hour, local[zone].minute),
            timezone=zone,
            created_at=day_ago - timedelta(days=30),
            confirmed_at=day_ago - timedelta(days=30),
            unsubscribed_at=None,
            watermark=day_ago,
            last_digest_at=day_ago,
        )
        if mix:
            sub = _mixed(sub, n, local[zone])
        subs.append(sub)
    return subs


def _mixed(sub: Any, n: int, local: datetime) -> Any:
    from dataclasses import replace

    from feedpipe.model import Frequency

    kinds = [Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY, Frequency.INSTANT]
    kind = n % 5
    if kind == 4:
        return replace(sub, min_posts=3, max_wait=timedelta(days=7))
    month_ago = sub.last_digest_at - timedelta(days=30)
    return replace(
        sub,
        frequency=kinds[kind],
        weekday=local.weekday(),
        month_day=min(local.day, 28),
        last_digest_at=month_ago if kind in (1, 2) else sub.last_digest_at,
    )


def plan_editions(
    subs: Sequence[Any], posts: Sequence[Post]
) -> list[tuple[EditionContent, tuple[int, ...]]]:
    """The real planner (feedpipe.digests.plan.plan)."""
    from feedpipe.digests.plan import plan
    from feedpipe.model import DigestPost

    by_id = {p.id: p for p in posts}
    light = [
        DigestPost(
            p.id, p.first_seen_at, p.published, False, False, tuple(t.key for t in p.categories)
        )
        for p in posts
    ]

    def load(ids: Sequence[int]) -> Mapping[int, Post]:
        return {i: by_id[i] for i in ids}

    result = plan(subs, light, NOW, load)
    return [(e.content, e.subscriber_ids) for e in result.editions]


def recipients_for(subs: Sequence[Any], base: str, secret: str) -> dict[int, Recipient]:
    """Recipients with signed unsubscribe and preference links, as DigestService makes them."""
    from feedpipe.subscriptions.tokens import (
        TokenMaker,
        TokenPurpose,
        preferences_url,
        unsubscribe_url,
    )

    maker = TokenMaker(secret, NOW)
    return {
        s.id: Recipient(
            s.id,
            s.email,
            s.name,
            unsubscribe_url(base, maker.make(TokenPurpose.UNSUBSCRIBE, s.id)),
            preferences_url(base, maker.make(TokenPurpose.PREFERENCES, s.id)),
        )
        for s in subs
    }


def timed(label: str, action: Callable[[], Any], out: dict[str, float]) -> Any:
    start = time.perf_counter()
    result = action()
    out[label] = time.perf_counter() - start
    return result


def render_all(
    renderer: EmailRenderer, editions: Sequence[tuple[EditionContent, tuple[int, ...]]]
) -> tuple[list[RenderedEdition], list[float]]:
    rendered, seconds = [], []
    for content, _ in editions:
        start = time.perf_counter()
        rendered.append(renderer.render_edition(content))
        seconds.append(time.perf_counter() - start)
    return rendered, seconds


def personalise_all(
    rendered: Sequence[RenderedEdition],
    editions: Sequence[tuple[EditionContent, tuple[int, ...]]],
    recipients: Mapping[int, Recipient],
) -> tuple[int, int, int]:
    """Every message to bytes (dropped after measuring, as a dispatcher would stream them)."""
    count = total = largest = 0
    for edition, (_, ids) in zip(rendered, editions, strict=True):
        for sid in ids:
            data = personalize(edition, recipients[sid], f"<{sid}.{edition.key[:12]}@blog>", NOW)
            count += 1
            total += len(data)
            largest = max(largest, len(data))
    return count, total, largest


def sample(
    editions: Sequence[tuple[EditionContent, tuple[int, ...]]], size: int
) -> Iterator[tuple[EditionContent, int]]:
    """`size` (edition, subscriber) pairs spread over the editions."""
    step = max(1, len(editions) // size)
    for index in range(size):
        content, ids = editions[(index * step) % len(editions)]
        yield content, ids[index % len(ids)]


def baseline(
    settings_: Settings,
    editions: Sequence[tuple[EditionContent, tuple[int, ...]]],
    recipients: Mapping[int, Recipient],
) -> float:
    """Seconds per message of the naive path: Jinja2 + premailer + EmailMessage per subscriber."""
    renderer = EmailRenderer(settings_, inliner="premailer")
    pairs = list(sample(editions, BASELINE_SAMPLE))
    start = time.perf_counter()
    for content, sid in pairs:
        render_message(renderer, content, recipients[sid], f"<{sid}@blog>", NOW)
    return (time.perf_counter() - start) / len(pairs)


def inliner_comparison(renderer: EmailRenderer, content: EditionContent) -> dict[str, float]:
    """Median ms to inline one edition's HTML with each library."""
    view = renderer.view(content)
    who = RecipientView(
        "n", "Hi,", "Here…", "e@x.example", "https://x.example/u", "https://x.example/p"
    )
    context = {
        "site": renderer.site,
        "edition": view,
        "recipient": who,
        "subject": "s",
        "indent": "",
    }
    html = renderer.env.get_template("digest.html.j2").render(context)
    out: dict[str, float] = {"html_kb": len(html) / 1000}
    engines: tuple[Inliner, ...] = ("css_inline", "premailer")
    for engine in engines:
        runs = []
        for _ in range(15):
            start = time.perf_counter()
            inline_css(html, engine)
            runs.append(time.perf_counter() - start)
        out[engine] = statistics.median(runs) * 1000
    return out


def report(*lines: str) -> None:
    print("\n".join(lines))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    rng = random.Random(2026)
    config = settings()
    posts = make_posts(rng)
    mix = "--mix" in sys.argv[1:]
    subs = subscribers(rng, mix)
    recipients = recipients_for(subs[:1], config.web.base_url, "bench-secret")  # warm imports
    gc.collect()
    rss_before = rss_mb()
    t: dict[str, float] = {}
    editions = timed("plan", lambda: plan_editions(subs, posts), t)
    recipients = timed("signed links", lambda: recipients_for(subs, config.web.base_url, "s"), t)
    renderer = EmailRenderer(config)
    rendered, per_edition = timed("render", lambda: render_all(renderer, editions), t)
    count, total_bytes, largest = timed(
        "personalise", lambda: personalise_all(rendered, editions, recipients), t
    )
    rss_peak = rss_mb()
    fast = t["plan"] + t["render"] + t["personalise"]
    naive_per_message = baseline(config, editions, recipients)
    naive = t["plan"] + naive_per_message * count
    largest_content = max(editions, key=lambda e: e[0].post_count)[0]
    inline = inliner_comparison(renderer, largest_content)

    per_message = t["personalise"] / count * 1e6
    report(
        f"subscribers {len(subs):,}, category sets {CATEGORY_SETS}, zones {len(ZONES)}, "
        f"posts {POSTS}, cadences {'mixed' if mix else 'daily'}",
        f"editions {len(editions)}, messages {count:,}, {total_bytes / count / 1000:.1f} KB avg, "
        f"largest {largest / 1000:.1f} KB (limit {config.digest.max_bytes / 1000:.0f} KB)",
        f"plan            {t['plan']:7.2f} s",
        f"render          {t['render']:7.2f} s  ({len(rendered)} editions, median "
        f"{statistics.median(per_edition) * 1000:.1f} ms, max {max(per_edition) * 1000:.1f} ms)",
        f"personalise     {t['personalise']:7.2f} s  ({per_message:.1f} µs/message)",
        f"TOTAL plan+render+personalise {fast:.2f} s (target ≤ 10 s)",
        f"signed links    {t['signed links']:7.2f} s  (2 itsdangerous tokens each; not in TOTAL)",
        f"peak RSS        {rss_peak:7.1f} MB  (whole process; {rss_before:.1f} MB before the "
        "run; target ≤ 300)",
        f"naive baseline  {naive_per_message * 1000:7.2f} ms/message (Jinja2 + premailer + "
        f"EmailMessage, sample {BASELINE_SAMPLE}) → {naive:.1f} s for {count:,} (extrapolated)",
        f"speed-up        {naive / fast:7.1f} ×",
        f"inline one {largest_content.post_count}-post edition ({inline['html_kb']:.0f} KB HTML): "
        f"css_inline {inline['css_inline']:.2f} ms, premailer {inline['premailer']:.2f} ms",
    )
    return 0 if fast <= 10 and rss_peak <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
