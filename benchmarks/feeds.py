"""Feed build benchmark: what a user sees running the command, and what happens inside it.

Usage: python benchmarks/feeds.py [--sizes 1000,10000] [--corpus prose|synthetic]
                                  [--tables process,startup,inprocess] [--archive on,off]
                                  [--naive-up-to N]

process    each `feedpipe build` a whole process of the installed CLI: cold (fresh store), no
           change (median of 5), one new post (median of 3), and the naive script
           (naive_feeds.py) on the same files; wall, user+sys CPU, peak RSS of the largest
           process, peak PSS and RSS of the whole process tree.
startup    `feedpipe --version`, `--help`, `status`, `send` (nothing due) on a small store:
           median of 10 whole-process runs each.
inprocess  the older table: cold sync+build, no-op rebuilds and one added post timed inside
           one Python process (`--child`), for before/after comparisons of a refactor.

Prints figures only; nothing is asserted. The machine's other load shows in every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import prose  # noqa: E402
import synth  # noqa: E402

WritePosts = Callable[..., None]
RunCommand = Callable[..., "Run"]
WRITERS: dict[str, WritePosts] = {"prose": prose.write_posts, "synthetic": synth.write_posts}

CONFIG = """
[site]
title = "Bench"
url = "https://blog.example.com"
[source]
path = "{posts}"
[store]
url = "sqlite:///{db}"
[feeds]
output_dir = "{out}"
archive = {archive}
[email]
outbox_dir = "{outbox}"
"""


def write_config(tmp: Path, name: str, posts: Path, archive: bool = True) -> Path:
    """A config for `posts` with its own store, output and outbox under `tmp`; `archive`
    turns RFC 5005 archive pages on or off."""
    config = tmp / f"config-{name}.toml"
    config.write_text(
        CONFIG.format(
            posts=posts,
            db=tmp / f"fp-{name}.db",
            out=tmp / f"out-{name}",
            outbox=tmp / f"outbox-{name}",
            archive="true" if archive else "false",
        )
    )
    return config


def feedpipe_command() -> list[str]:
    """The installed `feedpipe` script beside this interpreter, else `python -m feedpipe`."""
    script = Path(sys.executable).with_name("feedpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "feedpipe"]


# -- memory of a process tree, sampled from outside ----------------------------------------


def _pss_kb(proc: Path) -> int:
    """Proportional set size: shared pages (fork copy-on-write) counted once across processes."""
    try:
        for line in (proc / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kb(proc: Path) -> int:
    try:
        for line in (proc / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(root: int) -> list[int]:
    """`root` and every process below it, walked through /proc/PID/task/TID/children."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(PSS, RSS) in MB of `root` and all its descendants, read from /proc now."""
    pids = _descendants(root)
    pss = sum(_pss_kb(Path(f"/proc/{pid}")) for pid in pids)
    rss = sum(_rss_kb(Path(f"/proc/{pid}")) for pid in pids)
    return pss / 1024, rss / 1024


class TreeSampler(threading.Thread):
    """From outside, samples the PSS and RSS of a process and its descendants (parse/render
    workers); outside, so the measured process stays single-threaded and forks as it would."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every = every
        self.peak_pss = 0.0
        self.peak_rss = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            pss, rss = tree_memory_mb(self.pid)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_rss = max(self.peak_rss, rss)
            if self.done.wait(self.every):
                return


# -- one whole-process run ------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What one command cost, from the outside."""

    wall: float
    cpu: float  # user + sys of the process and all its reaped children
    max_rss_mb: float  # peak RSS of the largest single process in the tree
    tree_pss_mb: float  # peak PSS of the whole tree together (sampled)
    tree_rss_mb: float  # peak RSS of the whole tree together (sampled; counts shared pages twice)
    stdout: str


LAUNCHER = """
import json, os, resource, sys, time
for line in sys.stdin:
    command, out = json.loads(line)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    pid = os.posix_spawn(command[0], command, os.environ, file_actions=actions)
    print(pid, flush=True)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps([wall, cpu, usage.ru_maxrss, code]), flush=True)
"""


def user_environment() -> dict[str, str]:
    """This environment as a user's shell has it: Python caches bytecode. (This machine sets
    PYTHONDONTWRITEBYTECODE=1, so an editable install would compile feedpipe's ~90 modules
    on every start, ~0.1 s that no installed copy pays: pip compiles on install.)"""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class Launcher:
    """A small process that starts every measured command and reports its rusage.

    ru_maxrss of a spawned child starts at its parent's RSS high-water mark (the parent's
    memory until exec), so this benchmark, with its prose pools, must not be that parent: the
    launcher is a bare interpreter (its ~10 MB is the floor of every `max` figure). CPU is its
    RUSAGE_CHILDREN delta around one child; the largest process's peak RSS comes from wait4
    on that child (RUSAGE_CHILDREN's ru_maxrss never goes down between commands).
    """

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=user_environment(),
        )

    def run(self, command: Sequence[str], sample: bool = True) -> Run:
        """Run `command` to completion, sampling its process tree's memory if `sample`."""
        assert self.proc.stdin and self.proc.stdout
        with tempfile.NamedTemporaryFile("r", suffix=".out") as out:
            self.proc.stdin.write(json.dumps([list(command), out.name]) + "\n")
            self.proc.stdin.flush()
            sampler = TreeSampler(int(self.proc.stdout.readline()))
            if sample:
                sampler.start()
            wall, cpu, max_rss_kb, code = json.loads(self.proc.stdout.readline())
            sampler.done.set()
            if sample:
                sampler.join()
            stdout = Path(out.name).read_text()
        if code:
            raise SystemExit(f"{' '.join(command)} failed with {code}:\n{stdout}")
        return Run(wall, cpu, max_rss_kb / 1024, sampler.peak_pss, sampler.peak_rss, stdout)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def median_run(runs: Sequence[Run]) -> Run:
    """Field by field median of `runs` (stdout of the first)."""
    return Run(
        statistics.median(r.wall for r in runs),
        statistics.median(r.cpu for r in runs),
        statistics.median(r.max_rss_mb for r in runs),
        statistics.median(r.tree_pss_mb for r in runs),
        statistics.median(r.tree_rss_mb for r in runs),
        runs[0].stdout,
    )


# -- the whole-process table ----------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    """One size's whole-process figures."""

    posts: int
    archive: bool
    feeds: int
    write_s: float
    cold: Run
    noop: Run
    added: Run
    naive: Run | None  # None: not run at this size (--naive-up-to)


def measure_process(
    run: RunCommand,
    size: int,
    tmp: Path,
    write_posts: WritePosts,
    noop_runs: int,
    archive: bool,
    naive_up_to: int,
) -> Process:
    posts = tmp / f"posts-process-{size}-{archive}"
    t = time.perf_counter()
    write_posts(posts, size)
    write_s = time.perf_counter() - t
    config = write_config(tmp, f"p{size}-{archive}", posts, archive)
    build = [*feedpipe_command(), "--config", str(config), "build"]
    cold = run(build)
    noop = median_run([run(build) for _ in range(noop_runs)])
    naive_script = [sys.executable, str(HERE / "naive_feeds.py"), str(posts), str(tmp / "naive")]
    naive = run(naive_script) if size <= naive_up_to else None
    added = []
    for k in range(3):
        write_posts(posts, 1, first=size + k, newest=True)
        added.append(run(build))
    found = re.search(r"build: (\d+) feeds", cold.stdout)
    feeds = int(found.group(1)) if found else 0
    return Process(size, archive, feeds, write_s, cold, noop, median_run(added), naive)


def _written(stdout: str) -> str:
    found = re.search(r"(\d+) files written", stdout)
    return found.group(1) if found else "?"


def _row(cells: Sequence[object], width: int = 8) -> str:
    return " ".join(f"{c:>{width}}" for c in cells)


def print_process(results: Sequence[Process], noop_runs: int) -> None:
    print(
        "\nWhole process: `feedpipe --config X build` as a user runs it. s = wall, cpu = user+sys "
        "of the tree, max = peak RSS of the largest process,\npss/rss = peak of the whole tree "
        f"(sampled every 50 ms); cold = fresh store; noop = nothing changed (median of "
        f"{noop_runs}); +1 = one new newest post (median of 3; files: written by the first);"
        " gen s = writing the posts; arch = RFC 5005 archive pages on/off"
    )
    head = ("posts", "arch", "feeds", "cold s", "cpu", "max MB", "pss MB", "rss MB", "noop s")
    print(_row((*head, "cpu", "max MB", "+1 s", "cpu", "max MB", "+1 files", "gen s")))
    for r in results:
        cells = (
            r.posts, "on" if r.archive else "off", r.feeds, f"{r.cold.wall:.2f}",
            f"{r.cold.cpu:.2f}",
            f"{r.cold.max_rss_mb:.0f}", f"{r.cold.tree_pss_mb:.0f}", f"{r.cold.tree_rss_mb:.0f}",
            f"{r.noop.wall:.3f}", f"{r.noop.cpu:.3f}", f"{r.noop.max_rss_mb:.0f}",
            f"{r.added.wall:.3f}", f"{r.added.cpu:.3f}", f"{r.added.max_rss_mb:.0f}",
            _written(r.added.stdout), f"{r.write_s:.1f}",
        )  # fmt: skip
        print(_row(cells))
    print(
        "\nNaive baseline (python-frontmatter + markdown-it-py + feedgen, every feed from "
        "scratch), whole process, same files as feedpipe's cold build; ratio = feedpipe / naive"
    )
    head_nv = ("posts", "arch", "naive s", "cpu", "max MB", "pss MB", "cold/nv", "cpu/nv")
    print(_row((*head_nv, "noop/nv", "+1/nv")))
    for r in results:
        if r.naive is None:
            print(_row((r.posts, "on" if r.archive else "off", "not run")))
            continue
        cells_nv = (
            r.posts, "on" if r.archive else "off", f"{r.naive.wall:.2f}", f"{r.naive.cpu:.2f}",
            f"{r.naive.max_rss_mb:.0f}",
            f"{r.naive.tree_pss_mb:.0f}", f"{r.cold.wall / r.naive.wall:.2f}",
            f"{r.cold.cpu / r.naive.cpu:.2f}", f"{r.noop.wall / r.naive.wall:.3f}",
            f"{r.added.wall / r.naive.wall:.3f}",
        )  # fmt: skip
        print(_row(cells_nv))


# -- the startup table ----------------------------------------------------------------------


def measure_startup(
    run: RunCommand, tmp: Path, write_posts: WritePosts, runs: int
) -> dict[str, Run]:
    """Median whole-process figures of quick commands against a small prepared store."""
    posts = tmp / "posts-startup"
    write_posts(posts, 50)
    fp = [*feedpipe_command(), "--config", str(write_config(tmp, "startup", posts))]
    run([*fp, "build"], sample=False)
    run([*fp, "subscribers", "add", "ada@example.com", "--confirmed"], sample=False)
    run([*fp, "send"], sample=False)  # whatever was due goes now; afterwards nothing is
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "feedpipe --version": [*fp, "--version"],
        "feedpipe --help": [*fp, "--help"],
        "feedpipe status": [*fp, "status"],
        "feedpipe send": [*fp, "send"],
    }
    return {
        name: median_run([run(command, sample=False) for _ in range(runs)])
        for name, command in commands.items()
    }


def print_startup(results: dict[str, Run], runs: int) -> None:
    print(
        f"\nStartup: median of {runs} whole-process runs (store: 50 posts, one subscriber, "
        "nothing due); python -c pass = the interpreter alone"
    )
    print(f"{'command':<20} {'wall ms':>8} {'cpu ms':>8} {'max MB':>8}")
    for name, r in results.items():
        print(f"{name:<20} {1000 * r.wall:>8.0f} {1000 * r.cpu:>8.0f} {r.max_rss_mb:>8.0f}")


# -- the in-process table -------------------------------------------------------------------


def child(config: Path, count: int, write_posts: WritePosts) -> None:
    """Run in a fresh process: cold build, no-op rebuilds, one added post. Prints JSON."""
    from feedpipe.service import Feedpipe
    from feedpipe.settings import load_settings

    settings = load_settings(config, env={})
    t0 = time.perf_counter()
    with Feedpipe.from_settings(settings) as fp:
        cold = fp.build()
        cold_s = time.perf_counter() - t0
        cold_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        noop = []
        for _ in range(5):
            t = time.perf_counter()
            report = fp.build()
            noop.append(time.perf_counter() - t)
        write_posts(settings.source.path, 1, first=count, newest=True)
        t = time.perf_counter()
        added = fp.build()
        added_s = time.perf_counter() - t
    print(
        json.dumps(
            {
                "cold_s": cold_s,
                "feeds": cold.feeds,
                "files": len(cold.written),
                "cold_rss_mb": cold_rss,
                "noop_s": statistics.median(noop),
                "noop_written": len(report.written),
                "added_s": added_s,
                "added_written": len(added.written),
                "added_sync_s": added.sync.seconds if added.sync else 0.0,
                "added_build_s": added.seconds,
            }
        )
    )


def measure_inprocess(
    run: RunCommand, size: int, tmp: Path, write_posts: WritePosts, corpus: str
) -> dict[str, float]:
    posts = tmp / f"posts-inprocess-{size}"
    write_posts(posts, size)
    config = write_config(tmp, f"i{size}", posts)
    result = run([sys.executable, __file__, "--corpus", corpus, "--child", str(config), str(size)])
    return {
        **json.loads(result.stdout.strip().splitlines()[-1]),
        "worker_rss_mb": result.tree_pss_mb,
    }


def print_inprocess(results: dict[int, dict[str, float]]) -> None:
    print(
        "\nIn process: cold = sync + build from an empty store; main = peak RSS of the main "
        "process; tree = peak PSS of main + parse/render workers;\n+1 = one new newest post: "
        "total, its sync, its build; ms/feed = +1 build time per feed rewritten (3 files a feed)"
    )
    head = ("posts", "feeds", "cold s", "main MB", "tree MB", "noop s", "+1 s", "+1 sync")
    print(_row((*head, "+1 build", "files", "ms/feed")))
    for size, r in results.items():
        per_feed = 1000 * r["added_build_s"] / max(1, r["added_written"] / 3)
        cells = (
            f"{size}", f"{r['feeds']:.0f}", f"{r['cold_s']:.2f}", f"{r['cold_rss_mb']:.0f}",
            f"{r['worker_rss_mb']:.0f}", f"{r['noop_s']:.3f}", f"{r['added_s']:.3f}",
            f"{r['added_sync_s']:.3f}", f"{r['added_build_s']:.3f}",
            f"{r['added_written']:.0f}", f"{per_feed:.1f}",
        )  # fmt: skip
        print(_row(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--corpus", choices=sorted(WRITERS), default="prose")
    parser.add_argument("--tables", default="process,startup,inprocess")
    parser.add_argument("--noop-runs", type=int, default=5)
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--archive", default="on", help="on, off or both (off,on)")
    parser.add_argument(
        "--naive-up-to",
        type=int,
        default=sys.maxsize,
        help="run the naive script only for sizes up to this (it takes minutes at 100k)",
    )
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "COUNT"))
    args = parser.parse_args()
    write_posts = WRITERS[args.corpus]
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), write_posts)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    tables = set(args.tables.split(","))
    print(f"corpus: {args.corpus}; feedpipe: {' '.join(feedpipe_command())}; {os.cpu_count()} CPUs")
    started = time.perf_counter()
    launcher = Launcher()
    run = launcher.run
    try:
        with tempfile.TemporaryDirectory(prefix="fp-bench-") as name:
            tmp = Path(name)
            if "startup" in tables:
                startup = measure_startup(run, tmp, write_posts, args.startup_runs)
                print_startup(startup, args.startup_runs)
            if "process" in tables:
                archives = [a == "on" for a in args.archive.split(",")]
                print_process(
                    [
                        measure_process(
                            run, s, tmp, write_posts, args.noop_runs, a, args.naive_up_to
                        )
                        for s in sizes
                        for a in archives
                    ],
                    args.noop_runs,
                )
            if "inprocess" in tables:
                print_inprocess(
                    {s: measure_inprocess(run, s, tmp, write_posts, args.corpus) for s in sizes}
                )
    finally:
        launcher.close()
    print(f"\nbenchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
