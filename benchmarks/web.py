"""Feed serving speed: feedpipe vs Starlette StaticFiles (same uvicorn) vs nginx, 200 and 304.

Builds a 50-item feed from synthetic posts, serves the same output folder three ways on
127.0.0.1, and loads each with wrk (Debian's `wrk`; falls back to an httpx keep-alive client).
Prints requests/s for a full 200 of /feed.xml and a conditional GET (If-None-Match → 304);
"uncounted" is feedpipe with feed reader counting off (WebConfig.count_readers), the baseline
of what counting costs. Every request carries a Feedly User-Agent.
Bounded: about a minute. Usage: .venv/bin/python benchmarks/web.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

POSTS = 60
CONNECTIONS = 16
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
AGENT = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 123 subscribers; like FeedFetcher-Google)"


def write_blog(root: Path) -> Path:
    posts = root / "posts"
    posts.mkdir()
    body = "\n\n".join(f"Paragraph {i} of a post about feeds and digests. " * 8 for i in range(6))
    for i in range(POSTS):
        (posts / f"post-{i:03d}.md").write_text(
            f'---\ntitle: "Post {i}"\ndate: 2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z\n'
            f'summary: "Summary {i}"\ncategories: [Rust]\n---\n{body}\n',
            encoding="utf-8",
        )
    config = root / "config.toml"
    config.write_text(
        f'[site]\ntitle = "Bench"\nurl = "https://blog.example.com"\n[source]\npath = "{posts}"\n'
        f'[store]\nurl = "sqlite:///{root / "fp.db"}"\n[feeds]\noutput_dir = "{root / "out"}"\n',
        encoding="utf-8",
    )
    return config


def build(config: Path) -> Path:
    from feedpipe.service import Feedpipe
    from feedpipe.settings import load_settings

    settings = load_settings(config, env={})
    with Feedpipe.from_settings(settings) as fp:
        fp.build()
    feed = settings.feeds.output_dir / "feed.xml"
    items = feed.read_text(encoding="utf-8").count("<item>")
    print(f"feed.xml: {items} items, {feed.stat().st_size:,} bytes")
    return settings.feeds.output_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(kind: str, port: int, target: str) -> None:
    """Child process: one uvicorn worker serving `kind` (feedpipe | feedpipe-uncounted | static;
    feedpipe counts every feed fetch by client, web/readers.py)."""
    import uvicorn

    if kind.startswith("feedpipe"):
        from feedpipe.service import Feedpipe
        from feedpipe.settings import load_settings
        from feedpipe.web import MemoryMailer, WebConfig, create_app

        service = Feedpipe.from_settings(load_settings(Path(target), env={}))
        counting = WebConfig(count_readers=kind == "feedpipe")
        app: object = create_app(service, MemoryMailer(), counting)
    else:
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        app = Starlette(routes=[Mount("/", StaticFiles(directory=target))])
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


def start_uvicorn(kind: str, target: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(port), target])
    return proc, port


def start_nginx(root: Path, out: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {root / 'nginx.pid'};\nerror_log stderr warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n access_log off;\n sendfile on;\n tcp_nopush on;\n keepalive_requests 1000000;\n"
        f" client_body_temp_path {root}/nb; proxy_temp_path {root}/np;\n"
        f" fastcgi_temp_path {root}/nf; uwsgi_temp_path {root}/nu; scgi_temp_path {root}/ns;\n"
        " types { application/rss+xml xml; application/feed+json json; }\n"
        f" server {{ listen 127.0.0.1:{port}; root {out}; }}\n}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(root)])
    return proc, port


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/feed.xml", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not come up")


def wrk(url: str, seconds: float, headers: dict[str, str]) -> float:
    args = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} error responses")
    return float(found.group(1)) if found else 0.0


async def _httpx_load(url: str, seconds: float, headers: dict[str, str]) -> float:
    limits = httpx.Limits(max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(limits=limits, headers=headers) as client:
        end = time.monotonic() + seconds
        counts = [0] * CONNECTIONS

        async def worker(i: int) -> None:
            while time.monotonic() < end:
                (await client.get(url)).raise_for_status()
                counts[i] += 1

        start = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(CONNECTIONS)))
        return sum(counts) / (time.monotonic() - start)


def load(url: str, seconds: float, headers: dict[str, str]) -> float:
    if shutil.which("wrk"):
        return wrk(url, seconds, headers)
    return asyncio.run(_httpx_load(url, seconds, headers))


def measure(name: str, port: int, seconds: float) -> tuple[float, float]:
    url = f"http://127.0.0.1:{port}/feed.xml"
    first = httpx.get(url, headers={"accept-encoding": "identity"})
    etag = first.headers["etag"]
    check = httpx.get(url, headers={"if-none-match": etag, "accept-encoding": "identity"})
    assert check.status_code == 304, (name, check.status_code)
    plain = {"Accept-Encoding": "identity", "User-Agent": AGENT}
    load(url, 1.0, plain)  # warm up
    full = load(url, seconds, plain)
    cond = load(url, seconds, {**plain, "If-None-Match": etag})
    return full, cond


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "PORT", "TARGET"))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return
    tool = "wrk -t2 -c16" if shutil.which("wrk") else f"httpx, {CONNECTIONS} connections"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx workers run as an unprivileged user
        config = write_blog(root)
        out = build(config)
        servers = {
            "feedpipe": start_uvicorn("feedpipe", str(config)),
            "uncounted": start_uvicorn("feedpipe-uncounted", str(config)),
            "StaticFiles": start_uvicorn("static", str(out)),
        }
        if Path(NGINX).exists():
            servers["nginx"] = start_nginx(root, out)
        results: dict[str, tuple[float, float]] = {}
        try:
            for name, (_, port) in servers.items():
                wait_ready(port)
                results[name] = measure(name, port, args.seconds)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(10)
    report(results, tool, args.seconds)


def report(results: dict[str, tuple[float, float]], tool: str, seconds: float) -> None:
    print(
        f"\nrequests/s on 127.0.0.1 ({tool}, {seconds:.0f} s each; one uvicorn worker, "
        "one nginx worker)"
    )
    print(f"{'server':<12} {'200 (full)':>12} {'304 (INM)':>12}")
    for name, (full, cond) in results.items():
        print(f"{name:<12} {full:>12,.0f} {cond:>12,.0f}")
    fp = results.get("feedpipe")
    for other in ("uncounted", "StaticFiles", "nginx"):
        if fp and other in results:
            full, cond = results[other]
            print(f"feedpipe / {other}: 200 ×{fp[0] / full:.2f}, 304 ×{fp[1] / cond:.2f}")


if __name__ == "__main__":
    main()
