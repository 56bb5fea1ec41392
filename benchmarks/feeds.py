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
        workers_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
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
                "worker_rss_mb": workers_rss,
                "noop_s": statistics.median(noop),
                "noop_written": len(report.written),
                "added_s": added_s,
                "added_written": len(added.written),
                "added_sync_s": added.sync.seconds if added.sync else 0.0,
            }
        )
    )


def measure(size: int, tmp: Path) -> dict[str, float]:
    posts = tmp / f"posts-{size}"
    write_posts(posts, size)
    config = tmp / f"config-{size}.toml"
    config.write_text(CONFIG.format(posts=posts, db=tmp / f"fp-{size}.db", out=tmp / f"out-{size}"))
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(config), str(size)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


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
        f"{'posts':>7} {'feeds':>6} {'cold s':>7} {'rss MB':>7} {'wrk MB':>7} "
        f"{'noop s':>7} {'+1 s':>6} {'+1 files':>8} {'+1 ms/feed':>10}"
    )
    for size, r in results.items():
        per_feed = 1000 * r["added_s"] / max(1, r["added_written"] / 3)
        print(
            f"{size:>7} {r['feeds']:>6.0f} {r['cold_s']:>7.2f} {r['cold_rss_mb']:>7.0f} "
            f"{r['worker_rss_mb']:>7.0f} {r['noop_s']:>7.3f} {r['added_s']:>6.3f} "
            f"{r['added_written']:>8.0f} {per_feed:>10.1f}"
        )
    if base is not None:
        ours = results[args.baseline_size]["cold_s"]
        print(
            f"naive baseline (python-frontmatter + markdown-it + feedgen), "
            f"{args.baseline_size} posts: {base:.2f} s; feedpipe cold: {ours:.2f} s; "
            f"ratio {base / ours:.2f}x"
        )


if __name__ == "__main__":
    main()
