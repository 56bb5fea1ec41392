"""Dispatch from the durable outbox (SQLite) into Postfix's smtp-sink: 10k, 50k, 200k queued.

Each size runs in a fresh process (fill the outbox, then `OutboxService.dispatch` over the SMTP
transport, concurrency 16) so peak RSS is per size. Prints figures against the smtplib
baseline of benchmarks/dispatch.py in the same run; asserts nothing. Loopback only, bounded.
With --dkim, each size is dispatched twice into the same sink, without and with DKIM signing
(a fresh 2048-bit RSA key), and the ratio is printed; --ed25519 adds a third run, RSA and
Ed25519 dual signing (RFC 8463).
Usage: python benchmarks/outbox_dispatch.py [--sizes 10000,50000,200000] [--dkim [--ed25519]]
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
{dkim}
[email.smtp]
host = "127.0.0.1"
port = {port}
concurrency = 16
"""
DKIM = 'dkim_key_path = "{key}"\ndkim_selector = "bench"\ndkim_domain = "blog.example.com"'
ED25519 = '\ndkim_ed25519_key_path = "{key}"\ndkim_ed25519_selector = "bench-ed"'


def make_key(folder: Path) -> Path:
    """A fresh 2048-bit RSA key (PKCS#8 PEM) in `folder`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def make_ed_key(folder: Path) -> Path:
    """A fresh Ed25519 key (PKCS#8 PEM) in `folder`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    path = folder / "dkim-ed25519.pem"
    path.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def child(root: Path, port: int, count: int, key: str = "") -> None:
    """Fill (count > 0) or dispatch (count == 0) in this fresh process; print JSON figures."""
    from feedpipe.service import Feedpipe
    from feedpipe.settings import load_settings

    (root / "posts").mkdir(parents=True, exist_ok=True)
    config = root / "config.toml"
    rsa_key, _, ed_key = key.partition("|")  # "rsa.pem" or "rsa.pem|ed25519.pem"
    dkim = DKIM.format(key=rsa_key) if rsa_key else ""
    dkim += ED25519.format(key=ed_key) if ed_key else ""
    config.write_text(CONFIG.format(posts=root / "posts", db=root / "fp.db", port=port, dkim=dkim))
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


def run(tmp: str, port: int, count: int, key: str = "") -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", tmp, str(port), str(count), key],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--child", nargs=4)
    parser.add_argument("--dkim", action="store_true", help="also dispatch with DKIM signing")
    parser.add_argument("--ed25519", action="store_true", help="and with RSA + Ed25519 too")
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
            key = str(make_key(Path(keys))) if args.dkim else ""
            for count in (int(s) for s in args.sizes.split(",")):
                plain = dispatch_once(port, count, base, "")
                if key:
                    signed = dispatch_once(port, count, base, key)
                    print(f"  DKIM on / off: {signed / plain:.0%}")
                if key and args.ed25519:
                    both = f"{key}|{make_ed_key(Path(keys))}"
                    dual = dispatch_once(port, count, base, both)
                    print(f"  DKIM RSA + Ed25519 / off: {dual / plain:.0%}")


def dispatch_once(port: int, count: int, base: float, key: str) -> float:
    """Fill `count` messages into a fresh outbox, dispatch them, print and return the rate."""
    with tempfile.TemporaryDirectory(prefix="fp-outbox-") as tmp:
        filled = run(tmp, port, count, key)
        r = run(tmp, port, 0, key)
    rate = r["sent"] / r["seconds"]
    print(
        f"outbox → SMTP c=16{(', DKIM+Ed25519' if '|' in key else ', DKIM') if key else ''}, "
        f"{count:>6} queued × "
        f"{filled['bytes']:.0f} B: {rate:,.0f}/s ({rate / base:.0%} of baseline), "
        f"sent {r['sent']:.0f}; dispatcher peak RSS {r['rss_peak_mb']:.0f} MB "
        f"(fill: {filled['seconds']:.1f} s, {filled['rss_peak_mb']:.0f} MB)"
    )
    return rate


if __name__ == "__main__":
    main()
