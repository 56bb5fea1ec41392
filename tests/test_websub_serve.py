"""WebSub through `feedpipe serve`: the /websub endpoint's answers and refusals, and end to end
on 127.0.0.1 — a subscriber subscribes, a post file is saved, the worker builds and publishes,
and the hub delivers the new feed, signed, to the callback (save-to-callback latency printed)."""

from __future__ import annotations

import hashlib
import hmac
import statistics
import subprocess
import time
import urllib.request
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

import feedparser
import pytest

from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.web import MemoryMailer, WebConfig, create_app
from tests.helpers import post, sqlite_file_url
from tests.test_cli_failures import free_port
from tests.test_web_helpers import TestClient
from tests.test_worker_procs import procs
from tests.websub_servers import Behaviour, Running, Seen, http_server
from tests.worker_helpers import FEEDPIPE, REPO, env_for, start_worker, stop, wait_for

__all__ = ["procs"]

SITE = "https://blog.example.com"
TOPIC = f"{SITE}/category/rust/feed.xml"
FORM = {"content-type": "application/x-www-form-urlencoded"}
SECRET = "callback-secret"
ADMIN = "websub-admin"
SAVES = 20  # saves measured end to end (the latency median is printed)


def _config(root: Path, port: int, websub: str, feeds: str = "") -> Path:
    posts = root / "posts"
    post(posts, "first", categories="[Rust]")
    text = (
        f'[site]\ntitle = "Test Blog"\nurl = "{SITE}"\n'
        f'[source]\npath = "{posts}"\n[store]\nurl = "{sqlite_file_url(root)}"\n'
        f'[feeds]\noutput_dir = "{root / "out"}"\ntags = false\n{feeds}'
        f'[web]\nbase_url = "http://127.0.0.1:{port}"\nport = {port}\n'
        f'[email]\noutbox_dir = "{root / "eml"}"\n'
        "[worker]\npoll_seconds = 60\ndebounce_seconds = 0.05\nplan_seconds = 60\n"
        f"[websub]\n{websub}\n"
    )
    path = root / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _client(root: Path, websub: str, feeds: str = "") -> tuple[TestClient, Feedpipe]:
    service = Feedpipe.from_settings(load_settings(_config(root, 8080, websub, feeds), env={}))
    service.build()
    app = create_app(service, MemoryMailer(), WebConfig(admin_token=ADMIN))
    return TestClient(app), service


def _subscribe_form(callback: str, **extra: str) -> str:
    return urlencode({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback,
                      **extra})  # fmt: skip


def test_the_endpoint_refuses_private_callbacks_and_bad_requests(tmp_path: Path) -> None:
    client, service = _client(tmp_path, "serve = true")
    with client:
        answer = client.post("/websub", content=_subscribe_form("http://127.0.0.1:9/cb"),
                             headers=FORM)  # fmt: skip
        assert answer.status_code == 400
        assert "loopback address (127.0.0.1)" in answer.text and "allow_private" in answer.text
        link_local = _subscribe_form("http://169.254.169.254/latest")
        answer = client.post("/websub", content=link_local, headers=FORM)
        assert answer.status_code == 400 and "link-local" in answer.text
        answer = client.post("/websub", content="hub.mode=dance", headers=FORM)
        assert answer.status_code == 400 and "hub.mode must be" in answer.text
        answer = client.post("/websub", json={"hub.mode": "subscribe"})
        assert answer.status_code == 415
        assert client.get("/websub").status_code == 200
    assert service.store.hub_subscriptions(TOPIC, service.clock.now()) == []
    feed = feedparser.parse((tmp_path / "out/category/rust/feed.xml").read_bytes())
    hubs = [link["href"] for link in feed.feed.links if link["rel"] == "hub"]
    assert hubs == ["http://127.0.0.1:8080/websub"]  # the feeds advertise this hub
    service.close()


def test_without_serve_there_is_no_hub(tmp_path: Path) -> None:
    client, service = _client(tmp_path, "serve = false")
    with client:
        answer = client.post("/websub", content=_subscribe_form("http://a.example/"), headers=FORM)
        assert answer.status_code == 404
    service.close()


def test_an_admin_build_publishes_after_answering(tmp_path: Path) -> None:
    with http_server(Behaviour(), "/hub") as hub:
        client, service = _client(tmp_path, "serve = false", f'websub_hubs = ["{hub.url}"]\n')
        post(tmp_path / "posts", "second", categories="[Rust]")
        with client:
            auth = {"authorization": f"Bearer {ADMIN}"}
            answer = client.post("/api/admin/build", headers=auth)
            assert answer.status_code == 200 and answer.json()["written"] > 0
        published = {s.form()["hub.url"][0] for s in hub.posts()}
    assert TOPIC in published and f"{SITE}/feed.xml" in published
    assert service.publish_states()[hub.url].result == "ok"
    service.close()


# --- end to end: feedpipe serve + feedpipe run, real sockets -------------------------------


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _hub_post(url: str, body: str) -> int:
    req = urllib.request.Request(url, data=body.encode(), headers=FORM, method="POST")
    with urllib.request.urlopen(req, timeout=5) as answer:
        return int(answer.status)


def _delivery_of(cb: Running, slug: str) -> Seen | None:
    """The first delivery whose feed lists the post `slug`."""
    for seen in cb.posts():
        entries = feedparser.parse(seen.body).entries
        if any(e.link.rstrip("/").endswith(f"/{slug}") for e in entries):
            return seen
    return None


@pytest.mark.slow
def test_a_saved_post_reaches_the_subscriber_signed(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    config = _config(tmp_path, port, "serve = true\nallow_private = true\nbackoff_seconds = 0.2")
    log = tmp_path / "serve.log"
    with log.open("ab") as handle:
        procs.append(
            subprocess.Popen(
                [*FEEDPIPE, "serve"],
                cwd=REPO,
                env=env_for(config),
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        )
    hub = f"http://127.0.0.1:{port}/websub"
    wait_for(lambda: _up(hub), 30)
    procs.append(start_worker(config, tmp_path / "worker.log"))
    wait_for(lambda: (tmp_path / "out/category/rust/feed.xml").is_file(), 30)
    with http_server(Behaviour(), "/callback") as cb:
        assert _hub_post(hub, _subscribe_form(cb.url, **{"hub.secret": SECRET})) == 202
        assert cb.wait("GET", 1, 10)[0].query["hub.topic"] == [TOPIC]
        latencies: list[float] = []
        written: list[float] = []  # the baseline: save → the feed file written (its mtime)
        for n in range(SAVES):
            slug = f"saved-{n}"
            saved, saved_wall = time.monotonic(), time.time()
            post(tmp_path / "posts", slug, date=f"2026-02-{n + 1:02d}T09:00:00Z")
            # generous and bounded: fails only if nothing arrives (the issue asks for < 2 s)
            found: Seen = wait_for(partial(_delivery_of, cb, slug), 30, 0.005)
            latencies.append(found.at - saved)
            written.append((tmp_path / "out/category/rust/feed.xml").stat().st_mtime - saved_wall)
            mac = hmac.new(SECRET.encode(), found.body, hashlib.sha256).hexdigest()
            assert found.headers["x-hub-signature"] == f"sha256={mac}"
            assert found.headers["content-type"].startswith("application/rss+xml")
            assert f'<{TOPIC}>; rel="self"' in found.headers["link"]
            newest = feedparser.parse(found.body).entries[0]  # the full feed, the new post first
            assert newest.link.rstrip("/").endswith(f"/{slug}")
    median = statistics.median(latencies)
    print(
        f"\nwebsub save→callback: median {median * 1000:.0f} ms of {SAVES}, "
        f"min {min(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms; "
        f"within 2 s: {sum(t < 2 for t in latencies)}/{SAVES}; "
        f"baseline save→feed file written: median {statistics.median(written) * 1000:.0f} ms"
    )
    serve, worker = procs
    assert stop(worker) == 0
    assert stop(serve) in (0, -15, 143)  # uvicorn re-raises the SIGTERM it handled (143: ours)
