"""Dispatch from the durable outbox (SQLite) into Postfix's smtp-sink: 10k, 50k, 200k queued.

Each size runs in a fresh process (fill the outbox, then `OutboxService.dispatch` over the SMTP
transport, concurrency 16) so peak RSS is per size. Prints figures against the smtplib
baseline of benchmarks/dispatch.py in the same run; asserts nothing. Loopback only, bounded.
With --dkim, each size is also dispatched into the same sink signed with a fresh RSA-2048 key,
an Ed25519 key, and both (dual signing, RFC 8463), with an unsigned run before and after each;
each signed rate is printed as a share of the mean of those two (a shared machine's load
changes from minute to minute), and so is the CPU a message (the dispatcher's threads, its key
processes, smtp-sink): the share the rate keeps when the run is CPU-bound.
Usage: python benchmarks/outbox_dispatch.py [--sizes 10000,50000,200000] [--dkim]
       [--variants rsa,ed25519,dual]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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
{dkim}
[email.smtp]
host = "127.0.0.1"
port = {port}
concurrency = 16
"""
DKIM = 'dkim_key_path = "{key}"\ndkim_selector = "bench"\ndkim_domain = "blog.example.com"'
ED25519 = 'dkim_ed25519_key_path = "{key}"\ndkim_ed25519_selector = "bench-ed"'
VARIANTS = ("rsa", "ed25519", "dual")


def make_keys(folder: Path) -> dict[str, str]:
    """Fresh RSA-2048 and Ed25519 keys (PKCS#8 PEM) in `folder`: the [email] lines per variant."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    paths = {}
    for name, key in (
        ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ed25519", ed25519.Ed25519PrivateKey.generate()),
    ):
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return {
        "rsa": DKIM.format(key=paths["rsa"]),
        "ed25519": DKIM.format(key=paths["ed25519"]),
        "dual": DKIM.format(key=paths["rsa"]) + "\n" + ED25519.format(key=paths["ed25519"]),
    }


def child(root: Path, port: int, count: int, dkim: str = "") -> None:
    """Fill (count > 0) or dispatch (count == 0) in this fresh process; print JSON figures."""
    from feedpipe.service import Feedpipe
    from feedpipe.settings import load_settings

    (root / "posts").mkdir(parents=True, exist_ok=True)
    config = root / "config.toml"
    config.write_text(CONFIG.format(posts=root / "posts", db=root / "fp.db", port=port, dkim=dkim))
    with Feedpipe.from_settings(load_settings(config, env={})) as fp:
        t, loop_cpu, used = time.perf_counter(), time.thread_time(), _cpu(resource.RUSAGE_SELF)
        helpers = _cpu(resource.RUSAGE_CHILDREN)
        if count:
            figures: dict[str, float] = {"bytes": bench_workers.fill_outbox(fp.store, count)}
        else:
            report = asyncio.run(fp.outbox.dispatch())
            sent = fp.store.outbox_counts()
            figures = {"attempted": report.attempted, "sent": sum(
                n for state, n in sent.items() if state.value == "sent"
            )}  # fmt: skip
        figures["seconds"] = time.perf_counter() - t
        figures["loop_cpu"] = time.thread_time() - loop_cpu  # the event loop's thread
        figures["threads_cpu"] = _cpu(resource.RUSAGE_SELF) - used - figures["loop_cpu"]
    figures["helpers_cpu"] = _cpu(resource.RUSAGE_CHILDREN) - helpers  # key processes
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["rss_peak_mb"] = usage.ru_maxrss / 1024
    figures["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the whole child, fill included
    print(json.dumps(figures))


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run(tmp: str, port: int, count: int, dkim: str = "") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", tmp, str(port), str(count), dkim],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--child", nargs=4)
    parser.add_argument("--dkim", action="store_true", help="also dispatch with DKIM signing")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="with --dkim: which")
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]), int(args.child[2]), args.child[3])
        return
    if not bench_dispatch.ensure_sink():
        raise SystemExit("no /usr/sbin/smtp-sink: apt-get install postfix")
    with bench_dispatch.smtp_sink() as port:
        base = bench_dispatch.rate(
            bench_dispatch.run_child("--child", "baseline", "--port", str(port), "--count", "10000")
        )
        print(f"baseline smtplib, 1 connection, 10000 messages: {base:.0f}/s")
        with tempfile.TemporaryDirectory(prefix="fp-dkim-") as keys:
            variants = make_keys(Path(keys)) if args.dkim else {}
            for count in (int(s) for s in args.sizes.split(",")):
                plain = [dispatch_once(port, count, base, "", "")]
                for name in args.variants.split(",") if variants else ():
                    signed = dispatch_once(port, count, base, name, variants[name])
                    plain.append(dispatch_once(port, count, base, "", ""))
                    compare(name, signed, plain[-2:])


def compare(name: str, signed: Run, around: list[Run]) -> None:
    """The signed rate as a share of the unsigned runs just before and after it (the load of
    a shared machine changes from minute to minute), and the same for CPU per message."""
    rate = sum(r.rate for r in around) / len(around)
    cpu = sum(r.cpu for r in around) / len(around)
    print(
        f"  DKIM {name} / off: {signed.rate / rate:.0%} of {rate:,.0f}/s (unsigned before and "
        f"after: {', '.join(f'{r.rate:,.0f}' for r in around)}/s); CPU a message "
        f"{signed.cpu:.0f} µs against {cpu:.0f}: {cpu / signed.cpu:.0%} when CPU-bound"
    )


@dataclass(frozen=True, slots=True)
class Run:
    rate: float  # messages a second
    cpu: float  # µs of CPU a message: the dispatcher's threads, its key processes, the sink


def sink_pids() -> list[int]:
    """The smtp-sink processes started by this one (their CPU is part of the cost)."""
    me = os.getpid()
    children = Path(f"/proc/{me}/task/{me}/children").read_text().split()
    return [int(p) for p in children if Path(f"/proc/{p}/comm").read_text().strip() == "smtp-sink"]


def dispatch_once(port: int, count: int, base: float, label: str, dkim: str) -> Run:
    """Fill `count` messages into a fresh outbox, dispatch them, print and return the rate."""
    with tempfile.TemporaryDirectory(prefix="fp-outbox-") as tmp:
        filled = run(tmp, port, count, dkim)
        sinks = sink_pids()
        sink, (busy, total) = bench_workers.process_cpu(sinks), bench_workers.cpu_ticks()
        r = run(tmp, port, 0, dkim)
        sink = bench_workers.process_cpu(sinks) - sink
        busy, total = (a - b for a, b in zip(bench_workers.cpu_ticks(), (busy, total), strict=True))
    rate = r["sent"] / r["seconds"]
    per = 1e6 / max(r["sent"], 1)
    print(
        f"outbox → SMTP c=16{', DKIM ' + label if label else ''}, {count:>6} queued × "
        f"{filled['bytes']:.0f} B: {rate:,.0f}/s ({rate / base:.0%} of baseline), "
        f"sent {r['sent']:.0f}; dispatcher CPU {r['cpu_seconds']:.1f} s, "
        f"peak RSS {r['rss_peak_mb']:.0f} MB "
        f"(fill: {filled['seconds']:.1f} s, {filled['rss_peak_mb']:.0f} MB)\n"
        f"    CPU µs a message: event loop {r['loop_cpu'] * per:.0f}, dispatcher's other "
        f"threads {r['threads_cpu'] * per:.0f}, its key processes "
        f"{r['helpers_cpu'] * per:.0f}, smtp-sink {sink * per:.0f}; "
        f"machine busy {busy / max(total, 1):.0%} of {os.cpu_count()} cores"
    )
    cpu = (r["loop_cpu"] + r["threads_cpu"] + r["helpers_cpu"] + sink) * per
    return Run(rate, cpu)


if __name__ == "__main__":
    main()
