"""Dispatch benchmark: SmtpTransport vs a stdlib smtplib baseline into Postfix's smtp-sink."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from feedpipe.emails.mime import MimeTemplate, personalize_template
from feedpipe.emails.render import EmailRenderer
from feedpipe.mail import DkimSigner, Envelope, Outcome, SmtpTransport
from feedpipe.mail.session import SessionConfig
from feedpipe.model import DigestSection, EditionContent, Post, Recipient, Term, TermKind
from feedpipe.settings import Settings, parse_settings

SINK = Path("/usr/sbin/smtp-sink")
SENDER = "digest@blog.example.com"
TARGET_BYTES = 25_000
BATCH = 200  # envelopes per send_many, like the dispatcher's claim size
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
WORDS = ("latency", "cache", "shard", "replica", "queue", "kernel", "compiler", "vector")
BASELINE_MESSAGES = 10_000
CONCURRENCIES = (1, 4, 8, 16)
SMALL, LARGE = 10_000, 50_000
DKIM_SAMPLE = 300


def settings() -> Settings:
    return parse_settings(
        {
            "site": {"title": "Blog 002", "url": "https://blog.example.com"},
            "email": {"from_address": SENDER, "unsubscribe_mailto": "unsub@blog.example.com"},
        }
    )


def make_post(n: int) -> Post:
    words = " ".join(WORDS[(n * 7 + i) % len(WORDS)] for i in range(45))
    seen = NOW - timedelta(hours=20, minutes=-n)
    term = Term(TermKind.CATEGORY, "Databases", "databases", "databases")
    return Post(
        id=n,
        guid=f"urn:post:{n}",
        slug=f"post-{n}",
        url=f"https://blog.example.com/posts/post-{n}/",
        title=f"Post {n}: {words[:50].title()}",
        summary=words[:280],
        content_html=f"<p>{words}</p>",
        published=seen,
        updated=None,
        categories=(term,),
        tags=(),
        author="Ann Author",
        image=None,
        image_alt=None,
        reading_time=5,
        draft=False,
        content_hash=f"h{n}",
        first_seen_at=seen,
    )


def edition_template() -> MimeTemplate:
    """A rendered edition of about 25 KB (as many posts as it takes)."""
    renderer = EmailRenderer(settings())
    for count in range(5, 200, 2):
        posts = tuple(make_post(n) for n in range(1, count + 1))
        content = EditionContent(f"bench-{count}", (DigestSection("Databases", "db", posts),))
        template = renderer.render_edition(content).template
        if len(template.data) >= TARGET_BYTES:
            return template
    return template


def recipient(n: int) -> Recipient:
    name = (None, f"Reader {n}", f"Zoë Müller {n}")[n % 3]
    url = f"https://news.example.com/u/{n}.tok-{n * 7919:x}"
    return Recipient(n, f"reader{n}@example.org", name, url, "https://news.example.com/p")


def message(template: MimeTemplate, n: int) -> bytes:
    return personalize_template(template, recipient(n), f"<ob{n}.e1@blog.example.com>", NOW)


# --- the sink -------------------------------------------------------------------------------


def ensure_sink() -> bool:
    """Install Debian's postfix (for smtp-sink) when missing; False if that is not possible."""
    if SINK.exists():
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    print("installing postfix (for /usr/sbin/smtp-sink) ...", flush=True)
    preseed = "postfix postfix/main_mailer_type select No configuration\n"
    subprocess.run(["debconf-set-selections"], input=preseed.encode(), check=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postfix"]):
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return SINK.exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def smtp_sink(pipelining: bool = True) -> Iterator[int]:
    """Run `smtp-sink` (accepts and discards) on a free loopback port; stop it afterwards."""
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    no_pipelining = [] if pipelining else ["-p"]
    command = [str(SINK), *user, *no_pipelining, "-c", f"127.0.0.1:{port}", "1000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"smtp-sink did not start on port {port}")


# --- measurements (each in its own process, so maxrss is its own) ---------------------------


def baseline(port: int, count: int) -> dict[str, Any]:
    """stdlib smtplib, one reused connection, pre-built 25 KB messages."""
    template = edition_template()
    prebuilt = [message(template, n) for n in range(100)]
    client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench.local")
    started = time.perf_counter()
    for n in range(count):
        client.sendmail(SENDER, [f"reader{n}@example.org"], prebuilt[n % 100])
    elapsed = time.perf_counter() - started
    client.quit()
    return {"messages": count, "seconds": elapsed, "bytes": len(prebuilt[0])}


async def dispatch(port: int, count: int, concurrency: int, signer: DkimSigner | None) -> int:
    """Build each batch by substitution into the edition's template, send it, go on."""
    template = edition_template()
    config = SessionConfig("127.0.0.1", port, "none", None, None, 30.0)
    transport = SmtpTransport(config, concurrency, signer=signer, local_hostname="bench.local")
    sent = 0
    try:
        for start in range(0, count, BATCH):
            batch = [
                Envelope(n, SENDER, f"reader{n}@example.org", message(template, n))
                for n in range(start, min(start + BATCH, count))
            ]
            deliveries = await transport.send_many(batch)
            sent += sum(d.outcome is Outcome.SENT for d in deliveries)
    finally:
        await transport.aclose()
    return sent


def feedpipe_run(
    port: int, count: int, concurrency: int, trace: bool, dkim: bool
) -> dict[str, Any]:
    signer = dkim_signer() if dkim else None
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    sent = asyncio.run(dispatch(port, count, concurrency, signer))
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    return {"messages": count, "sent": sent, "seconds": elapsed, "traced_peak": peak}


def dkim_signer() -> DkimSigner:
    """A throwaway 2048-bit RSA key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from feedpipe.mail.signing import DkimKey, load_key

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return DkimSigner(b"blog.example.com", (DkimKey(b"bench", load_key(pem, "bench")),))


def dkim_cost() -> dict[str, Any]:
    """Milliseconds per message for DkimSigner.sign on the 25 KB digest."""
    template, signer = edition_template(), dkim_signer()
    messages = [message(template, n) for n in range(DKIM_SAMPLE)]
    started = time.perf_counter()
    for data in messages:
        signer.sign(data)
    return {"ms_per_message": (time.perf_counter() - started) * 1000 / DKIM_SAMPLE}


def child(args: argparse.Namespace) -> None:
    if args.child == "baseline":
        result = baseline(args.port, args.count)
    elif args.child == "dkim":
        result = dkim_cost()
    else:
        result = feedpipe_run(args.port, args.count, args.concurrency, args.trace, args.dkim)
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run_child(*extra: str) -> dict[str, Any]:
    command = [sys.executable, __file__, *extra]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --- the report ------------------------------------------------------------------------------


def rate(result: dict[str, Any]) -> float:
    return float(result["messages"] / result["seconds"])


def report_feedpipe(port: int, base: float, count: int, concurrency: int, *flags: str) -> float:
    result = run_child("--child", "feedpipe", "--port", str(port), "--count", str(count),
                       "--concurrency", str(concurrency), *flags)  # fmt: skip
    per_second = rate(result)
    traced = result["traced_peak"]
    traced_text = f"  tracemalloc peak {traced / 2**20:6.1f} MB" if traced else ""
    label = "feedpipe+DKIM" if "--dkim" in flags else "feedpipe"
    print(
        f"{label:14} c={concurrency:<3} {count:>6} msgs  {per_second:7.0f}/s  "
        f"{per_second / base:5.0%} of baseline  maxrss {result['maxrss_mb']:6.1f} MB{traced_text}"
        f"  (sent {result['sent']})",
        flush=True,
    )
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", choices=("baseline", "feedpipe", "dkim"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count", type=int, default=SMALL)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--dkim", action="store_true")
    parser.add_argument("--quick", action="store_true", help="skip the 50k and tracemalloc runs")
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not ensure_sink():
        raise SystemExit(
            "no /usr/sbin/smtp-sink: install Debian's postfix (apt-get install postfix)"
        )
    started = time.monotonic()
    with smtp_sink() as port, smtp_sink(pipelining=False) as plain_port:
        run_all(port, plain_port, args.quick)
    print(f"total {time.monotonic() - started:.0f} s")


def run_all(port: int, plain_port: int, quick: bool) -> None:
    base_result = run_child(
        "--child", "baseline", "--port", str(port), "--count", str(BASELINE_MESSAGES)
    )
    base = rate(base_result)
    print(f"message size {base_result['bytes']} bytes; sink: Postfix smtp-sink on 127.0.0.1:{port}")
    print(f"baseline       smtplib, 1 connection  {BASELINE_MESSAGES} msgs  {base:7.0f}/s  "
          f"maxrss {base_result['maxrss_mb']:.1f} MB", flush=True)  # fmt: skip
    rates = {c: report_feedpipe(port, base, SMALL, c) for c in CONCURRENCIES}
    best = max(rates, key=lambda c: rates[c])
    if not quick:
        report_feedpipe(port, base, LARGE, best)
        report_feedpipe(port, base, SMALL, best, "--trace")
        report_feedpipe(port, base, LARGE, best, "--trace")
    print("same, into a smtp-sink that does not offer PIPELINING (-p):")
    for concurrency in (1, best):
        report_feedpipe(plain_port, base, SMALL // 2, concurrency)
    dkim = run_child("--child", "dkim")
    print(f"DKIM signing (dkimpy, rsa-sha256 2048, relaxed/relaxed): "
          f"{dkim['ms_per_message']:.2f} ms per 25 KB message", flush=True)  # fmt: skip
    report_feedpipe(port, base, 2_000, best, "--dkim")


if __name__ == "__main__":
    main()
