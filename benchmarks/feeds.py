"""Feed build benchmark: cold sync+build, no-op rebuild, one added post; against a naive baseline.

Usage: python benchmarks/feeds.py [--sizes 1000,10000,50000] [--baseline-size 10000]
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synth import write_posts  # noqa: E402

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
"""


def _pss_kb(proc: Path) -> int:
    """Proportional set size: shared pages (fork copy-on-write) counted once across processes."""
    try:
        for line in (proc / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss_mb(root: int) -> tuple[float, float]:
    """(PSS of `root`, PSS of `root` and all its descendants) in MB, read from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(
                line.split(":", 1) for line in (entry / "status").read_text().splitlines()
            )
        except (OSError, ValueError):
            continue
        parents[int(entry.name)] = int(fields.get("PPid", "0"))
        rss[int(entry.name)] = _pss_kb(entry) / 1024

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return rss.get(root, 0.0), sum(v for pid, v in rss.items() if descends(pid))


class TreeSampler(threading.Thread):
    """From outside, samples the PSS of a process and its descendants (parse/render workers);
    outside, so the measured process stays single-threaded and forks as it would."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_tree = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            self.peak_tree = max(self.peak_tree, _tree_rss_mb(self.pid)[1])


def child(config: Path, count: int) -> None:
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


def measure(size: int, tmp: Path) -> dict[str, float]:
    posts = tmp / f"posts-{size}"
    write_posts(posts, size)
    config = tmp / f"config-{size}.toml"
    config.write_text(CONFIG.format(posts=posts, db=tmp / f"fp-{size}.db", out=tmp / f"out-{size}"))
    with subprocess.Popen(
        [sys.executable, __file__, "--child", str(config), str(size)],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        sampler = TreeSampler(proc.pid)
        sampler.start()
        stdout, _ = proc.communicate()
        sampler.done.set()
    if proc.returncode:
        raise SystemExit(f"benchmark child failed with {proc.returncode}")
    result = dict(json.loads(stdout.strip().splitlines()[-1]))
    return {**result, "worker_rss_mb": sampler.peak_tree}


def baseline(size: int, tmp: Path) -> float:
    posts = tmp / f"posts-{size}"
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, str(HERE / "naive_feeds.py"), str(posts), str(tmp / "naive-out")],
        check=True,
    )
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--baseline-size", type=int, default=10000)
    parser.add_argument("--child", nargs=2)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="fp-bench-") as name:
        tmp = Path(name)
        results = {size: measure(size, tmp) for size in sizes}
        base = baseline(args.baseline_size, tmp) if args.baseline_size in results else None
    print(
        "cold = sync + build from an empty store; main = peak RSS of the main process; "
        "tree = peak PSS of main + parse/render workers;\n+1 = one new newest post: total, "
        "its sync, its build; ms/feed = +1 build time per feed rewritten (3 files a feed)"
    )
    head = ("posts", "feeds", "cold s", "main MB", "tree MB", "noop s", "+1 s", "+1 sync")
    print(" ".join(f"{h:>8}" for h in (*head, "+1 build", "files", "ms/feed")))
    for size, r in results.items():
        per_feed = 1000 * r["added_build_s"] / max(1, r["added_written"] / 3)
        cells = (
            f"{size}", f"{r['feeds']:.0f}", f"{r['cold_s']:.2f}", f"{r['cold_rss_mb']:.0f}",
            f"{r['worker_rss_mb']:.0f}", f"{r['noop_s']:.3f}", f"{r['added_s']:.3f}",
            f"{r['added_sync_s']:.3f}", f"{r['added_build_s']:.3f}",
            f"{r['added_written']:.0f}", f"{per_feed:.1f}",
        )  # fmt: skip
        print(" ".join(f"{c:>8}" for c in cells))
    if base is not None:
        ours = results[args.baseline_size]["cold_s"]
        print(
            f"naive baseline (python-frontmatter + markdown-it + feedgen), "
            f"{args.baseline_size} posts: {base:.2f} s; feedpipe cold: {ours:.2f} s; "
            f"ratio {base / ours:.2f}x"
        )


if __name__ == "__main__":
    main()
