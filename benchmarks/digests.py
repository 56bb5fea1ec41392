"""Digest benchmark at N subscribers (default 100k) in a real store, as whole processes.

Each phase is its own process, measured from outside (`os.wait4`: wall, CPU, peak RSS):
- load: 50 posts synced, N subscribers bulk-loaded 10,000 at a time (set-up, not a target);
- stream: what `feedpipe send` does before writing, read from the store the way it reads it:
  pages of active subscribers (keyset) → plan → signed links → render each edition once →
  every message personalised to bytes (dropped, as a dispatcher streams them); with the naive
  baseline (Jinja2 + premailer + EmailMessage per subscriber, sampled) and the inliners;
- fill: `Feedpipe.outbox.fill` (plan → render → rows and watermarks, a transaction a page),
  its steps timed (read, plan, links, render, messages, and the write step: rows, watermarks,
  commits), with PostgreSQL's backend CPU; then a second fill at the same time, which must
  queue nothing.
On SQLite (a file) and PostgreSQL (a fresh schema; $FEEDPIPE_BENCH_PG, default
127.0.0.1:5432/test). Targets at 1M: plan + render + personalise ≤ 30 s, peak RSS ≤ 300 MB,
the fill's write step ≥ 50k rows/s on both stores (the whole fill's rate is printed too).

    python benchmarks/digests.py [--subscribers N] [--mix] [--stores sqlite,postgresql]
                                 [--profile DIR] [--baseline-src DIR]

`--baseline-src` runs the fill phase a second time with another checkout's `src` (on a copy of
the same store) for a before/after in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workers import pg_schema  # noqa: E402  (benchmarks/workers.py: a throwaway schema)

REPO = HERE.parent
PLAN_TARGET, RSS_TARGET, FILL_TARGET = 30.0, 300.0, 50_000.0
Figures = dict[str, Any]


def run_child(phase: str, root: Path, url: str, args: argparse.Namespace, src: Path) -> Figures:
    """One phase in a fresh process; its figures, plus wall, CPU and peak RSS from wait4."""
    cmd = [sys.executable, str(HERE / "digests.py"), "--child", phase, "--root", str(root)]
    cmd += ["--url", url, "--subscribers", str(args.subscribers)]
    cmd += ["--mix"] if args.mix else []
    if args.profile:
        name = f"{phase}-{sa.make_url(url).get_backend_name()}"
        name += "" if src == REPO / "src" else "-baseline"
        cmd += ["--profile", str(Path(args.profile) / f"{name}.prof")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(REPO)])}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{phase} failed ({child.returncode}):\n{out}")
    figures: Figures = json.loads(out.strip().splitlines()[-1])
    figures["process"] = {
        "wall": time.perf_counter() - start,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss / 1024,
    }
    return figures


@contextmanager
def store_url(kind: str, root: Path) -> Iterator[str]:
    if kind == "sqlite":
        root.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{root / 'fp.db'}"
    else:
        with pg_schema() as url:
            yield url


def settle(url: str) -> None:
    """PostgreSQL: VACUUM ANALYZE after the bulk load, as autovacuum would (it is off on the
    test server: without it the load's updates leave every subscriber row dead once)."""
    if not url.startswith("postgresql"):
        return
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:  # the schema's own tables (others share the database)
        for table in ("subscribers", "posts", "post_terms", "terms", "editions", "outbox"):
            conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def load(root: Path, url: str, args: argparse.Namespace, src: Path = REPO / "src") -> Figures:
    figures = run_child("load", root, url, args, src)
    settle(url)
    return figures


def measure(kind: str, args: argparse.Namespace, tmp: Path) -> Figures:
    root = tmp / kind
    root.mkdir()
    src = REPO / "src"
    with store_url(kind, root) as url:
        out: Figures = {"load": load(root, url, args)}
        out["stream"] = run_child("stream", root, url, args, src)
        out["fill"] = run_child("fill", root, url, args, src)
    if args.baseline_src:  # its own store, loaded by its own code (its own migrations)
        baseline = Path(args.baseline_src)
        with store_url(kind, root / "baseline") as url:
            load(root, url, args, baseline)
            out["baseline"] = run_child("fill", root, url, args, baseline)
    return out


def report(args: argparse.Namespace, results: dict[str, Figures]) -> bool:
    """Print the table; whether every target was met."""
    kinds = list(results)
    first = results[kinds[0]]["stream"]
    print(
        f"subscribers {args.subscribers:,} ({'mixed cadences' if args.mix else 'daily'}), "
        f"posts {first['posts']}, category sets {first['category_sets']}, zones 3; "
        f"load average {first['load']}"
    )
    print(f"{'(wall / CPU where two)':42}" + "".join(f"{k:>16}" for k in kinds))
    ok = True

    def row(label: str, values: list[str]) -> None:
        print(f"{label:42}" + "".join(f"{v:>16}" for v in values))

    row("load (set-up)", [f"{r['load']['process']['wall']:.1f} s" for r in results.values()])
    stream = [r["stream"] for r in results.values()]
    for key, label in (
        ("read", "read pages (keyset)"),
        ("plan", "plan"),
        ("links", "signed links (2 tokens each)"),
        ("render", "render (each edition once)"),
        ("personalise", "personalise to bytes"),
    ):
        row(
            f"{label} (wall/CPU)",
            [f"{s['seconds'][key]:.1f} / {s['cpu'][key]:.1f} s" for s in stream],
        )
    totals = [sum(s["seconds"].values()) for s in stream]
    cpus = [sum(s["cpu"].values()) for s in stream]
    row(
        "TOTAL plan+render+personalise",
        [f"{t:.1f} / {c:.1f} s" for t, c in zip(totals, cpus, strict=True)],
    )
    row("  stream process wall / CPU", [_wall_cpu(s) for s in stream])
    row("  stream process peak RSS", [f"{s['process']['rss']:.0f} MB" for s in stream])
    row("  editions / messages", [f"{s['editions']} / {s['messages']:,}" for s in stream])
    row(
        "  per message",
        [f"{t / max(1, s['messages']) * 1e6:.1f} µs" for t, s in zip(totals, stream, strict=True)],
    )
    ok &= all(t <= PLAN_TARGET for t in totals)
    ok &= all(s["process"]["rss"] <= RSS_TARGET for s in stream)
    fills = [r["fill"] for r in results.values()]
    row("fill, whole (plan → rows committed)", [f"{f['fill']:.2f} s" for f in fills])
    row("  CPU: feedpipe / PostgreSQL", [_cpus(f) for f in fills])
    for key, label in (
        ("read", "read pages"),
        ("plan", "plan"),
        ("links", "signed links"),
        ("render", "render"),
        ("messages", "messages"),
        ("write", "write: rows, watermarks, commit"),
    ):
        row(f"  {label}", [_step(f, key) for f in fills])
    rates = [f["queued"] / f["fill"] for f in fills]
    writes = [f["queued"] / f["steps"]["write"][0] if f["steps"] else 0.0 for f in fills]
    row("  rows queued", [f"{f['queued']:,}" for f in fills])
    row("  rows/s, whole fill", [f"{r:,.0f}" for r in rates])
    row("  rows/s, write step", [f"{r:,.0f}" for r in writes])
    row("  write step wall / CPU", [_step(f, "write") for f in fills])
    row("  fill process wall / CPU", [_wall_cpu(f) for f in fills])
    row("  fill process peak RSS", [f"{f['process']['rss']:.0f} MB" for f in fills])
    row(
        "second fill (nothing due)",
        [f"{f['again']:.2f} s, {f['again_queued']} rows" for f in fills],
    )
    ok &= all(r >= FILL_TARGET for r in writes)
    pairs = zip(fills, stream, strict=True)
    ok &= all(f["queued"] == s["messages"] and f["again_queued"] == 0 for f, s in pairs)
    if any("baseline" in r for r in results.values()):
        base = [r.get("baseline") for r in results.values()]
        row("baseline fill (--baseline-src)", [f"{b['fill']:.2f} s" if b else "-" for b in base])
        row("  rows/s", [f"{b['queued'] / b['fill']:,.0f}" if b else "-" for b in base])
        row("  rows/s, write step", [_write_rate(b) if b else "-" for b in base])
        row("  CPU: feedpipe / PostgreSQL", [_cpus(b) if b else "-" for b in base])
        row("  process wall / CPU", [_wall_cpu(b) if b else "-" for b in base])
        row("  process peak RSS", [f"{b['process']['rss']:.0f} MB" if b else "-" for b in base])
    naive = first["naive_ms"] / 1000
    print(
        f"naive baseline {naive * 1000:.2f} ms/message (Jinja2 + premailer + EmailMessage, sample "
        f"{first['naive_sample']}) → {naive * first['messages']:.0f} s for {first['messages']:,} "
        f"(extrapolated): {naive * first['messages'] / totals[0]:.0f} × the TOTAL above"
    )
    inline = first["inline"]
    print(
        f"inline one {inline['posts']}-post edition ({inline['html_kb']:.0f} KB HTML): "
        f"css_inline {inline['css_inline']:.2f} ms, premailer {inline['premailer']:.2f} ms"
    )
    print(
        f"targets (plan+render+personalise ≤ {PLAN_TARGET:.0f} s, RSS ≤ {RSS_TARGET:.0f} MB, "
        f"fill ≥ {FILL_TARGET:,.0f} rows/s): {'met' if ok else 'NOT met'}"
    )
    return ok


def _write_rate(figures: Figures) -> str:
    write = figures["steps"].get("write")
    return "-" if not write else f"{figures['queued'] / write[0]:,.0f}"


def _cpus(figures: Figures) -> str:
    server = figures.get("server_cpu")
    return f"{figures['fill_cpu']:.1f} / " + ("-" if server is None else f"{server:.1f} s")


def _step(figures: Figures, key: str) -> str:
    found = figures["steps"].get(key)
    return "-" if found is None else f"{found[0]:.1f} / {found[1]:.1f} s"


def _wall_cpu(figures: Figures) -> str:
    p = figures["process"]
    return f"{p['wall']:.1f} / {p['cpu']:.1f} s"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--mix", action="store_true", help="five cadences, a fifth each")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--profile", help="write cProfile files of each phase here")
    parser.add_argument("--baseline-src", help="another checkout's src/ for a baseline fill")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.child:
        from digest_phases import run_phase  # the child: imports feedpipe (maybe the baseline's)

        print(json.dumps(run_phase(args.child, Path(args.root), args.url, args)))
        return 0
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fp-digests-") as tmp:
        results = {k: measure(k, args, Path(tmp)) for k in args.stores.split(",")}
    return 0 if report(args, results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
