"""Dispatch from the durable outbox (SQLite) into Postfix's smtp-sink: 10k, 50k, 200k queued.

Each size runs in a fresh process (fill the outbox, then `OutboxService.dispatch` over the SMTP
transport, concurrency 16) so peak RSS is per size. Prints figures against the smtplib
baseline of benchmarks/dispatch.py in the same run; asserts nothing. Loopback only, bounded.
Usage: python benchmarks/outbox_dispatch.py [--sizes 10000,50000,200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import dispatch as bench_dispatch  # noqa: E402
import workers as bench_workers  # noqa: E402

CONFIG = """
[site]
title = "Bench"
url = "https://blog.example.com"
[source]
path = "{posts}"
[store]
url = "sqlite:///{db}"
[email]
from_address = "digest@blog.example.com"
transport = "smtp"
batch_size = 500
[email.smtp]
host = "127.0.0.1"
port = {port}
concurrency = 16
"""


def child(root: Path, port: int, count: int) -> None:
    """Fill (count > 0) or dispatch (count == 0) in this fresh process; print JSON figures."""
    from feedpipe.service import Feedpipe
    from feedpipe.settings import load_settings

    (root / "posts").mkdir(parents=True, exist_ok=True)
    config = root / "config.toml"
    config.write_text(CONFIG.format(posts=root / "posts", db=root / "fp.db", port=port))
    with Feedpipe.from_settings(load_settings(config, env={})) as fp:
        t = time.perf_counter()
        if count:
            figures: dict[str, float] = {"bytes": bench_workers.fill_outbox(fp.store, count)}
        else:
            report = asyncio.run(fp.outbox.dispatch())
            sent = fp.store.outbox_counts()
            figures = {"attempted": report.attempted, "sent": sum(
                n for state, n in sent.items() if state.value == "sent"
            )}  # fmt: skip
        figures["seconds"] = time.perf_counter() - t
    figures["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def run(tmp: str, port: int, count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", tmp, str(port), str(count)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]))
        return
    if not bench_dispatch.ensure_sink():
        raise SystemExit("no /usr/sbin/smtp-sink: apt-get install postfix")
    with bench_dispatch.smtp_sink() as port:
        base = bench_dispatch.rate(
            bench_dispatch.run_child("--child", "baseline", "--port", str(port), "--count", "10000")
        )
        print(f"baseline smtplib, 1 connection, 10000 messages: {base:.0f}/s")
        for count in (int(s) for s in args.sizes.split(",")):
            with tempfile.TemporaryDirectory(prefix="fp-outbox-") as tmp:
                filled = run(tmp, port, count)
                r = run(tmp, port, 0)
            rate = r["sent"] / r["seconds"]
            print(
                f"outbox → SMTP c=16, {count:>6} queued × {filled['bytes']:.0f} B: "
                f"{rate:,.0f}/s ({rate / base:.0%} of baseline), sent {r['sent']:.0f}; "
                f"dispatcher peak RSS {r['rss_peak_mb']:.0f} MB "
                f"(fill: {filled['seconds']:.1f} s, {filled['rss_peak_mb']:.0f} MB)"
            )


if __name__ == "__main__":
    main()
