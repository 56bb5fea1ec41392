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
    """`outbox.fill` at NOW, its steps timed, then again (nothing may be queued twice)."""
    from feedpipe.model import OutboxState

    with Feedpipe.from_settings(settings(root, url), FixedClock(NOW)) as fp:
        steps = Steps()
        server = ServerCpu(fp.store)
        start, cpu = time.perf_counter(), time.process_time()
        with steps.timing():
            report = fp.outbox.fill(NOW)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        server_cpu = server.seconds()
        again = fp.outbox.fill(NOW)
        again_seconds = time.perf_counter() - start - seconds
        queued = fp.store.outbox_counts()[OutboxState.QUEUED]
    return {
        "fill": seconds,
        "fill_cpu": cpu,
        "server_cpu": server_cpu,
        "steps": steps.figures(),
        "queued": report.queued,
        "editions": report.editions,
        "due": report.due,
        "again": again_seconds,
        "again_queued": again.queued,
        "rows": queued,
    }


class Steps:
    """Wall and CPU seconds of a fill's steps, by wrapping the functions it calls (the baseline
    checkout, without them, reports none). `write` is the page transactions' own work: rows,
    watermarks and commits (a page's time less its read, its suppression check and `make`)."""

    WRAPPED = (
        ("feedpipe.store.outbox", None, "subscriber_page", "read"),
        ("feedpipe.store.outbox", None, "suppressed_between", "suppressed"),
        ("feedpipe.digests.service", "RunPlan", "page", "plan"),
        ("feedpipe.digests.service", "DigestService", "page_recipients", "links"),
        ("feedpipe.outbox.fill", None, "new_edition", "render"),
        ("feedpipe.outbox.fill", None, "new_messages", "messages"),
        ("feedpipe.outbox.fill", "PageFill", "make", "make"),
        ("feedpipe.store.sql", "SqlStore", "fill_outbox_page", "page"),
    )

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def timing(self) -> Iterator[None]:
        import importlib

        undo = []
        for module_name, owner_name, name, step in self.WRAPPED:
            module = importlib.import_module(module_name)
            owner = getattr(module, owner_name, None) if owner_name else module
            original = getattr(owner, name, None)
            if original is None:
                continue
            setattr(owner, name, self._timed(original, step))
            undo.append((owner, name, original))
        try:
            yield
        finally:
            for owner, name, original in undo:
                setattr(owner, name, original)

    def _timed(self, original: Callable[..., Any], step: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.wall[step] = self.wall.get(step, 0.0) + time.perf_counter() - wall
                self.cpu[step] = self.cpu.get(step, 0.0) + time.thread_time() - cpu

        return call

    def figures(self) -> dict[str, tuple[float, float]]:
        if "page" not in self.wall:
            return {}
        out = {k: (self.wall[k], self.cpu[k]) for k in self.wall if k not in ("page", "make")}
        inside = ("read", "suppressed", "make")
        out["write"] = tuple(  # type: ignore[assignment]
            clock["page"] - sum(clock.get(k, 0.0) for k in inside)
            for clock in (self.wall, self.cpu)
        )
        return out


class ServerCpu:
    """CPU seconds PostgreSQL's backends spent for this process's connections (/proc)."""

    def __init__(self, store: Any) -> None:
        from sqlalchemy import event

        self.start: dict[int, float] = {}
        if store.dialect == "postgresql":
            event.listen(store.engine, "checkout", self._seen)

    def _seen(self, dbapi_conn: Any, *_: Any) -> None:
        pid = dbapi_conn.info.backend_pid
        if pid not in self.start:
            self.start[pid] = self._cpu(pid)

    @staticmethod
    def _cpu(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float | None:
        if not self.start:
            return None
        return sum(self._cpu(pid) - begun for pid, begun in self.start.items())


class Clocks:
    """Wall and CPU seconds spent per step, summed over the pages."""

    STEPS = ("read", "plan", "links", "render", "personalise")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.STEPS, 0.0)
        self.cpu = dict.fromkeys(self.STEPS, 0.0)
        self._last = time.perf_counter(), time.thread_time()

    def lap(self, step: str) -> None:
        now = time.perf_counter(), time.thread_time()
        self.seconds[step] += now[0] - self._last[0]
        self.cpu[step] += now[1] - self._last[1]
        self._last = now


class Stream:
    """The stream phase's pages: plan, links, each edition rendered once, messages to bytes."""

    def __init__(self, fp: Feedpipe) -> None:
        from feedpipe.emails.render import EmailRenderer, RenderedEdition
        from feedpipe.model import EditionContent, Recipient

        self.fp = fp
        self.renderer = EmailRenderer(fp.settings)
        self.sender = fp.settings.email.from_address
        self.clocks = Clocks()
        self.rendered: dict[str, RenderedEdition] = {}
        self.samples: list[tuple[EditionContent, Recipient]] = []
        self.count = self.total = self.largest = 0

    def run(self) -> None:
        from feedpipe.model import SubscriberStatus
        from feedpipe.outbox.fill import FILL_PAGE

        run, clocks = self.fp.digests.run(NOW, self.renderer.fingerprint()), self.clocks
        last: int | None = 0
        while last is not None:
            subs, last = self.fp.store.subscriber_page(last, FILL_PAGE, SubscriberStatus.ACTIVE)
            clocks.lap("read")
            if not subs:
                continue
            plan = run.page(subs)
            clocks.lap("plan")
            recipients = self.fp.digests.page_recipients(plan, subs)
            clocks.lap("links")
            for edition in plan.editions:
                self.messages(edition.key, edition.content, recipients.get(edition.key, ()))
            clocks.lap("personalise")

    def messages(self, key: str, content: Any, recipients: Any) -> None:
        from feedpipe.emails.render import personalize
        from feedpipe.outbox.policy import message_id

        done = self.rendered.get(key)
        if done is None:
            self.clocks.lap("personalise")
            done = self.rendered[key] = self.renderer.render_edition(content)
            self.clocks.lap("render")
            self.samples.append((content, recipients[0]))
        for r in recipients:
            data = personalize(done, r, message_id(key, r.subscriber_id, self.sender), NOW)
            self.count, self.total = self.count + 1, self.total + len(data)
            self.largest = max(self.largest, len(data))


def stream(root: Path, url: str) -> dict[str, Any]:
    """Everything a fill does but the writes, page by page from the store as a fill reads
    them (and with the collector paused as in a fill), and every message built to bytes as
    the dispatcher builds it (`personalize`)."""
    from feedpipe.outbox.fill import without_cycle_collection

    with Feedpipe.from_settings(settings(root, url), FixedClock(NOW)) as fp:
        pages = Stream(fp)
        with without_cycle_collection():
            pages.run()
        naive = naive_ms(fp, pages.samples)
        largest = max((c for c, _ in pages.samples), key=lambda c: c.post_count)
        inline = inliner_comparison(pages.renderer, largest)
    return {
        "seconds": pages.clocks.seconds,
        "cpu": pages.clocks.cpu,
        "editions": len(pages.rendered),
        "messages": pages.count,
        "avg_kb": pages.total / max(1, pages.count) / 1000,
        "largest_kb": pages.largest / 1000,
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
