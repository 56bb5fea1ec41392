"""Readers, counted: aggregator fetches over real HTTP, subscriber counts, 304 ratios, 429."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from feedpipe.cli import cli
from feedpipe.cli.readers import readers_table
from feedpipe.clock import FixedClock
from feedpipe.web.readers import parse_agent
from feedpipe.worker.readers_metrics import ReaderTotals
from tests.test_web_helpers import Web, make_web

FEEDLY = (
    "Feedly/1.0 (+http://www.feedly.com/fetcher.html; {n} subscribers; like FeedFetcher-Google)"
)
INOREADER = "Mozilla/5.0 (compatible; Inoreader/1.0; https://www.inoreader.com; {n} subscribers)"
NEWSBLUR = "NewsBlur Feed Fetcher - {n} subscribers - https://www.newsblur.com/site/6/blog"
FEEDBIN = "Feedbin feed-id:1373711 - {n} subscribers"
OLD_READER = "Mozilla/5.0 (compatible; theoldreader.com; {n} subscribers; feed-id=4c4b)"
MINIFLUX = "Mozilla/5.0 (compatible; Miniflux/2.2.3; +https://miniflux.app)"


@pytest.mark.parametrize(
    ("agent", "aggregator", "subscribers"),
    [
        (FEEDLY.format(n=123), "Feedly", 123),
        (INOREADER.format(n=12), "Inoreader", 12),
        (NEWSBLUR.format(n=3), "NewsBlur", 3),
        (FEEDBIN.format(n=1), "Feedbin", 1),
        (OLD_READER.format(n="1,024"), "The Old Reader", 1024),
        ("Tiny Tiny RSS/21.04 (https://tt-rss.org/) 7 readers", "Tiny Tiny RSS", 7),
        (MINIFLUX, "Miniflux", None),
        ("feedparser/6.0.11 +https://github.com/kurtmckee/feedparser/", "feedparser", None),
        ("curl/8.5.0", "curl", None),
        ("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0", "(browser)", None),
        ("", "(none)", None),
    ],
)
def test_user_agents_give_the_aggregator_and_its_count(
    agent: str, aggregator: str, subscribers: int | None
) -> None:
    found = parse_agent(agent)
    assert (found.aggregator, found.subscribers) == (aggregator, subscribers)
    if subscribers is not None:  # the count is not part of the client's key
        assert "N subscribers" in found.client or "N readers" in found.client


def test_a_changing_count_keeps_one_client() -> None:
    assert parse_agent(FEEDLY.format(n=5)).client == parse_agent(FEEDLY.format(n=6)).client


@contextlib.contextmanager
def serving(w: Web) -> Iterator[str]:
    """`feedpipe serve`'s app under uvicorn on 127.0.0.1, lifespan on (the last flush)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(w.app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _fetch(client: httpx.Client, url: str, agent: str, etags: dict[str, str] | None) -> int:
    """One fetch; with `etags`, conditional (the ETag of the last 200 for this URL)."""
    headers = {"user-agent": agent}
    if etags is not None and url in etags:
        headers["if-none-match"] = etags[url]
    response = client.get(url, headers=headers)
    if etags is not None and response.status_code == 200:
        etags[url] = response.headers["etag"]
    return response.status_code


SITE, TAG = "/feed.xml", "/category/ai/atom.xml"
PLAN = [  # (agent, feed, fetches, conditional)
    (FEEDLY.format(n=120), SITE, 3, True),
    (FEEDLY.format(n=123), SITE, 3, True),  # the newest count wins
    (INOREADER.format(n=12), SITE, 4, True),
    (INOREADER.format(n=5), TAG, 2, True),
    (NEWSBLUR.format(n=3), SITE, 5, False),  # never sends a validator
    (FEEDBIN.format(n=2), SITE, 2, True),
    (OLD_READER.format(n=8), TAG, 3, True),
    (MINIFLUX, SITE, 4, True),
    ("curl/8.5.0", SITE, 2, False),
]


def test_simulated_aggregator_fetches_make_the_reader_table(
    tmp_path: Path, corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = make_web(tmp_path, corpus_dir, FixedClock(datetime(2026, 11, 21, 12, tzinfo=UTC)))
    assert (w.out / TAG.lstrip("/")).is_file()
    statuses: dict[tuple[str, str], list[int]] = {}
    with serving(w) as base, httpx.Client() as client:
        for agent, feed, count, conditional in PLAN:
            etags: dict[str, str] | None = {} if conditional else None
            for _ in range(count):
                code = _fetch(client, base + feed, agent, etags)
                statuses.setdefault((agent, feed), []).append(code)
        for other in ("/feeds.opml", "/history/feed-1.xml", "/category/rust/"):
            client.get(base + other, headers={"user-agent": "curl/8.5.0"})  # not feed fetches
    assert statuses[(INOREADER.format(n=12), SITE)] == [200, 304, 304, 304]
    assert statuses[(NEWSBLUR.format(n=3), SITE)] == [200] * 5
    rows = {(r.feed, r.aggregator): r for r in w.fp.reader_rows()}  # flushed at shutdown
    assert set(rows) == {
        (SITE, "Feedly"), (SITE, "Inoreader"), (SITE, "NewsBlur"), (SITE, "Feedbin"),
        (SITE, "Miniflux"), (SITE, "curl"), (TAG, "Inoreader"), (TAG, "The Old Reader"),
    }  # fmt: skip
    feedly = rows[(SITE, "Feedly")]
    assert (feedly.subscribers, feedly.fetches, feedly.not_modified) == (123, 6, 4)
    assert rows[(SITE, "NewsBlur")].never_conditional and rows[(SITE, "NewsBlur")].ratio_304 == 0
    assert (rows[(TAG, "Inoreader")].subscribers, rows[(SITE, "Inoreader")].subscribers) == (5, 12)
    assert rows[(SITE, "Miniflux")].subscribers is None
    assert rows[(SITE, "curl")].fetches == 2  # the archive page and the OPML are not counted
    assert "127.0.0.1" not in "\n".join(map(repr, rows.values()))  # no address kept
    registry = CollectorRegistry()
    registry.register(ReaderTotals(w.fp.reader_rows))
    metrics = generate_latest(registry).decode()
    assert 'feedpipe_feed_subscribers{aggregator="Feedly",feed="/feed.xml"} 123.0' in metrics
    assert "feedpipe_feed_subscribers_total 153.0" in metrics
    assert 'feedpipe_feed_not_modified{aggregator="Feedly",feed="/feed.xml"} 4.0' in metrics
    config = tmp_path / "config.toml"
    env = {"FEEDPIPE_SECRET_KEY": "x"}
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--readers"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == readers_table(list(rows.values())) + "\n"
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "feed", "aggregator", "subscribers", "last", "seen", "304", "ratio", "fetches",
        "validators",
    ]  # fmt: skip
    with capsys.disabled():
        print("\n" + result.output)
    w.fp.close()


def test_unconditional_refetches_of_an_unchanged_feed_get_429(
    tmp_path: Path, corpus_dir: Path
) -> None:
    w = make_web(
        tmp_path,
        corpus_dir,
        FixedClock(datetime(2026, 11, 21, 12, tzinfo=UTC)),
        web_extra="refuse_unconditional_after = 3\n",
    )
    agent = {"user-agent": "lazy-poller/1.0"}
    with w.client as client:
        codes = [client.get("/feed.xml", headers=agent).status_code for _ in range(3)]
        refused = client.get("/feed.xml", headers=agent)
        assert codes == [200, 200, 200] and refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
        etag = client.get("/feed.xml", headers={**agent, "if-none-match": "x"}).headers["etag"]
        assert client.get("/feed.xml", headers={**agent, "if-none-match": etag}).status_code == 304
        other = {"user-agent": "another/2.0"}  # per client
        assert client.get("/feed.xml", headers=other).status_code == 200
        w.ticks.now += 3601  # an hour later the window is empty again
        assert client.get("/feed.xml", headers=agent).status_code == 200
    w.fp.close()
