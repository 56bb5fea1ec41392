"""The digest benchmark's child processes: load, stream (plan → links → render → bytes), fill."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from digest_site import CATEGORY_SETS, NOW, POSTS, build, settings
from feedpipe.clock import FixedClock
from feedpipe.service import Feedpipe

BASELINE_SAMPLE = 50
PROFILE_LINES = 25


def run_phase(phase: str, root: Path, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """One phase's figures (the parent adds the process's wall, CPU and peak RSS)."""
    action: Callable[[], dict[str, Any]]
    if phase == "load":
        action = lambda: {"stored": build(root, url, args.subscribers, args.mix)}  # noqa: E731
    elif phase == "stream":
        action = lambda: stream(root, url)  # noqa: E731
    else:
        action = lambda: fill(root, url)  # noqa: E731
    with profiled(args.profile):
        out = action()
    out["rss_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile the phase into `path`, top lines (cumulative, then own time) to stderr."""
    if not path:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        profile.dump_stats(path)
        stats = pstats.Stats(profile, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
        stats.sort_stats("tottime").print_stats(PROFILE_LINES)


def fill(root: Path, url: str) -> dict[str, Any]:
    """`outbox.fill` at NOW, then again (nothing may be queued twice)."""
    from feedpipe.model import OutboxState

    with Feedpipe.from_settings(settings(root, url), FixedClock(NOW)) as fp:
        start, cpu = time.perf_counter(), time.process_time()
        report = fp.outbox.fill(NOW)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        again = fp.outbox.fill(NOW)
        again_seconds = time.perf_counter() - start - seconds
        queued = fp.store.outbox_counts()[OutboxState.QUEUED]
    return {
        "fill": seconds,
        "fill_cpu": cpu,
        "queued": report.queued,
        "editions": report.editions,
        "due": report.due,
        "again": again_seconds,
        "again_queued": again.queued,
        "rows": queued,
    }


class Clocks:
    """Seconds spent per step, summed over the pages."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(("read", "plan", "links", "render", "personalise"), 0.0)
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.seconds[step] += now - self._last
        self._last = now


def stream(root: Path, url: str) -> dict[str, Any]:
    """Everything a fill does but the writes, page by page from the store, and every message
    built to bytes as the dispatcher builds it (`personalize`)."""
    from feedpipe.emails.render import EmailRenderer, RenderedEdition, personalize
    from feedpipe.model import EditionContent, Recipient, SubscriberStatus
    from feedpipe.outbox.fill import FILL_PAGE
    from feedpipe.outbox.policy import message_id

    with Feedpipe.from_settings(settings(root, url), FixedClock(NOW)) as fp:
        renderer = EmailRenderer(fp.settings)
        sender = fp.settings.email.from_address
        clocks = Clocks()
        run = fp.digests.run(NOW, renderer.fingerprint())
        rendered: dict[str, RenderedEdition] = {}
        samples: list[tuple[EditionContent, Recipient]] = []
        count = total = largest = 0
        last: int | None = 0
        while last is not None:
            subs, last = fp.store.subscriber_page(last, FILL_PAGE, SubscriberStatus.ACTIVE)
            clocks.lap("read")
            if not subs:
                continue
            plan = run.page(subs)
            clocks.lap("plan")
            recipients = fp.digests.page_recipients(plan, subs)
            clocks.lap("links")
            for edition in plan.editions:
                done = rendered.get(edition.key)
                if done is None:
                    clocks.lap("personalise")
                    done = rendered[edition.key] = renderer.render_edition(edition.content)
                    clocks.lap("render")
                    samples.append((edition.content, recipients[edition.key][0]))
                for r in recipients.get(edition.key, ()):
                    data = personalize(
                        done, r, message_id(edition.key, r.subscriber_id, sender), NOW
                    )
                    count, total, largest = count + 1, total + len(data), max(largest, len(data))
            clocks.lap("personalise")
        naive = naive_ms(fp, samples)
        inline = inliner_comparison(
            renderer, max((c for c, _ in samples), key=lambda c: c.post_count)
        )
    return {
        "seconds": clocks.seconds,
        "editions": len(rendered),
        "messages": count,
        "avg_kb": total / max(1, count) / 1000,
        "largest_kb": largest / 1000,
        "posts": POSTS,
        "category_sets": CATEGORY_SETS,
        "naive_ms": naive,
        "naive_sample": BASELINE_SAMPLE,
        "inline": inline,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def naive_ms(fp: Feedpipe, samples: list[Any]) -> float:
    """Milliseconds per message of the naive path: Jinja2 + premailer + EmailMessage each."""
    from tests.naive_email import render_message

    from feedpipe.emails.render import EmailRenderer

    renderer = EmailRenderer(fp.settings, inliner="premailer")
    pairs = [samples[i % len(samples)] for i in range(BASELINE_SAMPLE)]
    start = time.perf_counter()
    for content, recipient in pairs:
        render_message(renderer, content, recipient, f"<{recipient.subscriber_id}@blog>", NOW)
    return (time.perf_counter() - start) / len(pairs) * 1000


def inliner_comparison(renderer: Any, content: Any) -> dict[str, float]:
    """Median ms to inline one edition's HTML with each library."""
    from feedpipe.emails.inline import Inliner, inline_css
    from feedpipe.emails.views import RecipientView

    view = renderer.view(content)
    who = RecipientView(
        "n", "Hi,", "Here…", "e@x.example", "https://x.example/u", "https://x.example/p"
    )
    context = {"site": renderer.site, "edition": view, "recipient": who, "subject": "s"}
    html = renderer.env.get_template("digest.html.j2").render({**context, "indent": ""})
    out: dict[str, float] = {"html_kb": len(html) / 1000, "posts": content.post_count}
    engines: tuple[Inliner, ...] = ("css_inline", "premailer")
    for engine in engines:
        runs = []
        for _ in range(15):
            start = time.perf_counter()
            inline_css(html, engine)
            runs.append(time.perf_counter() - start)
        out[engine] = statistics.median(runs) * 1000
    return out
