"""Shared set-up for the web tests: a built corpus blog, the app, clocks and raw ASGI calls."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

with warnings.catch_warnings():  # Starlette 1.x suggests httpx2; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient as TestClient  # re-exported for test_web

from feedpipe.clock import FixedClock
from feedpipe.model import Subscriber
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.web import MemoryMailer, WebConfig, create_app
from feedpipe.web.app import FeedpipeWeb
from feedpipe.web.guard import Limits
from feedpipe.web.ratelimit import Rate
from tests.helpers import write_config

SECRET = "web-test-secret"
ADMIN = "admin-token-for-tests"
BASE_URL = "https://news.example.com"


@dataclass
class Ticks:
    """An injectable monotonic clock for the rate limiters."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Web:
    """One running web surface over a built blog."""

    fp: Feedpipe
    clock: FixedClock
    mailer: MemoryMailer
    app: FeedpipeWeb
    client: TestClient
    ticks: Ticks
    posts: Path
    out: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def settle(self) -> None:
        """Wait until the subscribe requests sent so far are handled (after their reply)."""
        self.app.pages.state.guard.intake.join()

    def confirmations(self, email: str | None = None) -> list[str]:
        """Paths of the confirmation links queued (to `email`)."""
        self.settle()
        queued = [m for m in self.mailer.messages if m.kind == "confirmation"]
        return [urlsplit(m.body).path for m in queued if email in (None, m.to)]

    def subscriber(self, email: str) -> Subscriber:
        self.settle()
        return self.fp.subscriptions.get(email)


def make_web(
    root: Path,
    corpus: Path,
    clock: FixedClock,
    limits: Limits | None = None,
    blog: str = "blog-000",
    web_extra: str = "",
) -> Web:
    posts = root / "posts"
    shutil.copytree(corpus / blog, posts)
    config = write_config(root, posts)
    text = config.read_text(encoding="utf-8") + f'[web]\nbase_url = "{BASE_URL}"\n{web_extra}'
    config.write_text(text, encoding="utf-8")
    settings = load_settings(config, env={"FEEDPIPE_SECRET_KEY": SECRET})
    fp = Feedpipe.from_settings(settings, clock)
    fp.build()
    mailer = MemoryMailer()
    ticks = Ticks()
    limits = limits or Limits(Rate(1000, 60), Rate(1000, 60), Rate(1, 900))
    app = create_app(fp, mailer, WebConfig(admin_token=ADMIN, limits=limits, monotonic=ticks))
    client = TestClient(app, base_url=BASE_URL)
    return Web(fp, clock, mailer, app, client, ticks, posts, root / "out")


@pytest.fixture
def web(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> Iterator[Web]:
    w = make_web(tmp_path, corpus_dir, clock)
    with w.client:
        yield w
    w.fp.close()


def raw_request(
    app: Any, path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Drive the ASGI app with a path exactly as given (no client-side normalisation)."""

    async def run() -> tuple[int, dict[bytes, bytes], bytes]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode("utf-8", "surrogateescape"),
            "query_string": b"",
            "root_path": "",
            "headers": headers or [],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        await app(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent[1:])
        return sent[0]["status"], dict(sent[0]["headers"]), body

    return anyio.run(run)
