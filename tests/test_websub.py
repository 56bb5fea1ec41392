"""WebSub: publishing to hubs (a real local hub records the POSTs), the hub's rules, its store
records, and the hub itself (verification, leases, signed deliveries, refusals)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.errors import ValidationError
from feedpipe.model.websub import HubSubscription, PublishState
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.store import Store
from feedpipe.websub.client import Reply, Retry, request, with_retries
from feedpipe.websub.hub import Hub
from feedpipe.websub.publish import Publisher, feed_urls
from feedpipe.websub.rules import (
    HubRequest,
    callback_refusal,
    grant_lease,
    parse_request,
    signature,
    topic_path,
    verification_url,
)
from feedpipe.worker.jobs import ServiceJobs
from feedpipe.worker.leader import SoleLeader
from feedpipe.worker.metrics import WorkerMetrics
from feedpipe.worker.runner import Worker, WorkerParts
from tests.helpers import post, write_config
from tests.websub_servers import Behaviour, http_server

SITE = "https://blog.example.com"
TOPIC = f"{SITE}/category/rust/feed.xml"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
NO_WAIT = Retry(attempts=3, backoff=0.0, timeout=2.0)


# --- the rules (pure) ----------------------------------------------------------------------


def test_feed_urls_are_the_subscription_documents_only() -> None:
    written = [
        "feed.xml",
        "category/rust/atom.xml",
        "category/rust/history/feed-3.xml",
        "category/rust/index.html",
        "tag/x/feed.json",
        "feeds.opml",
        "feed.xsl",
    ]
    assert feed_urls(written, SITE + "/") == [
        f"{SITE}/category/rust/atom.xml",
        f"{SITE}/feed.xml",
        f"{SITE}/tag/x/feed.json",
    ]


@pytest.mark.parametrize(
    ("topic", "path"),
    [
        (TOPIC, "category/rust/feed.xml"),
        (f"{SITE}/atom.xml", "atom.xml"),
        (f"{SITE}/tag/web/feed.json", "tag/web/feed.json"),
        (f"{SITE}/category/rust/history/feed-1.xml", None),
        (f"{SITE}/category/rust/index.html", None),
        (f"{SITE}/category/../feed.xml", None),
        (f"{SITE}/category/.x/feed.xml", None),
        (f"{SITE}/feed.xml?x=1", None),
        ("https://elsewhere.example/feed.xml", None),
        (f"{SITE}.evil.example/feed.xml", None),
        (f"{SITE}/other/rust/feed.xml", None),
    ],
)
def test_topic_path_accepts_only_our_feeds(topic: str, path: str | None) -> None:
    assert topic_path(topic, SITE) == path


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({}, "hub.mode"),
        ({"hub.mode": "watch"}, "hub.mode"),
        ({"hub.mode": "subscribe", "hub.callback": "http://a.example/"}, "hub.topic"),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC}, "hub.callback"),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": "ftp://a/"}, "hub.callback"),
        (
            {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": "http://a.example/#x"},
            "hub.callback",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": TOPIC,
                "hub.callback": "http://a.example/",
                "hub.lease_seconds": "-5",
            },
            "hub.lease_seconds",
        ),
        (
            {
                "hub.mode": "subscribe",
                "hub.topic": TOPIC,
                "hub.callback": "http://a.example/",
                "hub.secret": "s" * 200,
            },
            "hub.secret",
        ),
        ({"hub.mode": "publish"}, "hub.topic"),
    ],
)
def test_bad_requests_name_the_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        parse_request(form)


def test_a_good_subscribe_request() -> None:
    form = {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.callback": "https://reader.example/cb?id=7",
        "hub.lease_seconds": "3600",
        "hub.secret": "s3cret",
    }
    req = parse_request(form)
    assert req == HubRequest("subscribe", TOPIC, "https://reader.example/cb?id=7", 3600, "s3cret")
    url = verification_url(req.callback, req, "abc", 3600)
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "id": ["7"],
        "hub.mode": ["subscribe"],
        "hub.topic": [TOPIC],
        "hub.challenge": ["abc"],
        "hub.lease_seconds": ["3600"],
    }
    assert parse_request({"hub.mode": "publish", "hub.url": TOPIC}).topic == TOPIC


@pytest.mark.parametrize(
    ("addresses", "kind"),
    [
        (["127.0.0.1"], "loopback"),
        (["::1"], "loopback"),
        (["10.1.2.3"], "private"),
        (["192.168.0.9"], "private"),
        (["93.184.216.34", "172.16.0.1"], "private"),
        (["169.254.169.254"], "link-local"),
        (["fe80::1"], "link-local"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["0.0.0.0"], "unspecified"),
        (["224.0.0.1"], "multicast"),
    ],
)
def test_private_callbacks_are_refused_with_the_reason(addresses: list[str], kind: str) -> None:
    refusal = callback_refusal(addresses)
    assert refusal is not None and f"{kind} address" in refusal


def test_public_callbacks_pass() -> None:
    assert callback_refusal(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]) is None


@given(st.integers(min_value=1, max_value=10**9) | st.none())
def test_the_lease_granted_is_bounded(asked: int | None) -> None:
    lease = grant_lease(asked, 864_000, 2_592_000)
    assert 60 <= lease <= 2_592_000
    assert lease == (864_000 if asked is None else max(60, min(asked, 2_592_000)))


@given(st.text(min_size=1, max_size=50), st.binary(max_size=500))
def test_signature_is_hmac_sha256_of_the_body(secret: str, body: bytes) -> None:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert signature(secret, body) == f"sha256={expected}"


def test_retries_back_off_and_stop() -> None:
    replies = iter([Reply(0, error="refused"), Reply(503), Reply(429), Reply(202)])
    waits: list[float] = []
    reply, attempts = with_retries(lambda: next(replies), Retry(4, 0.5), waits.append)
    assert reply.status == 202 and attempts == 4 and waits == [0.5, 1.0, 2.0]
    waits.clear()
    reply, attempts = with_retries(lambda: Reply(400), Retry(4, 0.5), waits.append)
    assert (reply.status, attempts, waits) == (400, 1, [])  # a 4xx is an answer
    reply, attempts = with_retries(lambda: Reply(500), Retry(3, 1.0), waits.append)
    assert (reply.status, attempts, waits) == (500, 3, [1.0, 2.0])  # bounded


def test_the_client_never_follows_redirects_nor_raises() -> None:
    refused = request("GET", "http://127.0.0.1:9/", timeout=1.0)
    assert refused.status == 0 and refused.error
    with http_server(Behaviour(post_status=302)) as server:
        assert request("POST", server.url, body=b"x", timeout=2.0).status == 302


# --- the store ------------------------------------------------------------------------------


def test_subscriptions_are_renewed_expired_and_removed(store: Store) -> None:
    sub = HubSubscription(TOPIC, "http://cb.example/1", "k", 60, T0 + timedelta(seconds=60), T0)
    store.save_hub_subscription(sub)
    other = HubSubscription(TOPIC, "http://cb.example/2", None, 600, T0 + timedelta(hours=1), T0)
    store.save_hub_subscription(other)
    assert store.hub_subscriptions(TOPIC, T0) == [sub, other]
    renewed = HubSubscription(TOPIC, sub.callback, None, 7200, T0 + timedelta(hours=2), T0)
    store.save_hub_subscription(renewed)
    later = T0 + timedelta(seconds=90)
    assert store.hub_subscriptions(TOPIC, later) == [renewed, other]
    assert store.hub_subscriptions(f"{SITE}/feed.xml", T0) == []
    assert store.expire_hub_subscriptions(T0 + timedelta(hours=1)) == 1  # `other` ran out
    assert store.remove_hub_subscription(TOPIC, sub.callback)
    assert not store.remove_hub_subscription(TOPIC, sub.callback)
    assert store.hub_subscriptions(TOPIC, T0) == []


def test_publish_states_round_trip(store: Store) -> None:
    state = PublishState("https://hub.example/" + "x" * 300, T0, "error", "HTTP 503", 4, 1)
    store.put_publish_state(state)
    store.put_publish_state(PublishState("https://h2.example", T0, "ok", "3 URLs", 3, 0))
    assert store.publish_states()[state.hub] == state
    assert sorted(store.publish_states()) == ["https://h2.example", state.hub]


# --- publishing ---------------------------------------------------------------------------


def test_publish_posts_each_url_to_each_hub_and_retries(store: Store) -> None:
    clock = FixedClock(T0)
    waits: list[float] = []
    with (
        http_server(Behaviour(fail_first=2), "/hub") as flaky,
        http_server(Behaviour(), "/hub") as steady,
    ):
        publisher = Publisher(
            (flaky.url, steady.url), store, clock, Retry(4, 0.25), sleep=waits.append
        )
        urls = [TOPIC, f"{SITE}/feed.xml"]
        report = publisher.publish(urls)
        for server in (flaky, steady):
            forms = [s.form() for s in server.posts()]
            assert all(
                s.headers["content-type"] == "application/x-www-form-urlencoded"
                for s in server.posts()
            )
            assert {f["hub.url"][0] for f in forms} == set(urls)
            assert all(f["hub.mode"] == ["publish"] for f in forms)
        assert len(flaky.posts()) == 4 and len(steady.posts()) == 2  # two 503s, retried
    assert (report.ok, report.failed, report.retries) == (4, 0, 2)
    assert waits == [0.25, 0.5]
    states = store.publish_states()
    assert states[flaky.url] == PublishState(flaky.url, T0, "ok", "2 URLs", 2, 0)


def test_a_hub_that_keeps_failing_is_given_up_on_and_shown(store: Store) -> None:
    with http_server(Behaviour(fail_first=100), "/hub") as down:
        publisher = Publisher((down.url,), store, FixedClock(T0), Retry(3, 0.0))
        report = publisher.publish([TOPIC])
        assert len(down.posts()) == 3  # bounded
    assert report.failed == 1 and report.error() == (
        f"1 publish notifications not accepted: {down.url}: HTTP 503"
    )
    state = store.publish_states()[down.url]
    assert (state.result, state.detail, state.ok, state.failed) == ("error", "HTTP 503", 0, 1)
    # a hub that does not answer at all: the rest of its URLs are not waited on
    report = Publisher(("http://127.0.0.1:9/hub",), store, FixedClock(T0), NO_WAIT).publish(
        [TOPIC, f"{SITE}/feed.xml"]
    )
    assert report.failed == 2 and report.retries == 2


def _site(root: Path, extra: str = "", websub: str = "") -> Path:
    posts = root / "posts"
    post(posts, "first", categories="[Rust]")
    config = write_config(root, posts, **{"websub_hubs": extra} if extra else {})
    text = config.read_text() + '[web]\nbase_url = "http://127.0.0.1:1"\n' + websub
    config.write_text(text)
    return config


def test_feedpipe_build_publishes_the_changed_feeds_and_status_shows_it(tmp_path: Path) -> None:
    with http_server(Behaviour(), "/hub") as hub:
        config = _site(tmp_path, json.dumps([hub.url]))
        env = {"FEEDPIPE_CONFIG": str(config)}
        result = CliRunner().invoke(cli, ["build"], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "published to 1 hub" in result.stdout
        published = sorted(s.form()["hub.url"][0] for s in hub.posts())
        assert f"{SITE}/category/rust/feed.xml" in published and f"{SITE}/feed.xml" in published
        assert len(published) == 6  # site + rust, three formats each
        again = CliRunner().invoke(cli, ["build"], env=env, catch_exceptions=False)
        assert "websub" not in again.stdout and len(hub.posts()) == 6  # nothing changed
        rss = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes())
        assert {link["href"] for link in rss.feed.links if link["rel"] == "hub"} == {hub.url}
        status = CliRunner().invoke(cli, ["status", "--json"], env=env, catch_exceptions=False)
        found = json.loads(status.stdout)
        assert found["websub"][0]["hub"] == hub.url and found["websub"][0]["ok"] == 6
        assert found["runs"]["publish"]["outcome"] == "ok"
        text = CliRunner().invoke(cli, ["status"], env=env, catch_exceptions=False).stdout
        assert hub.url in text and "6 URLs" in text


def test_the_worker_publishes_in_its_own_job_and_counts_it(tmp_path: Path) -> None:
    with http_server(Behaviour(fail_first=1), "/hub") as hub:
        config = _site(tmp_path, json.dumps([hub.url]), "[websub]\nbackoff_seconds = 0\n")
        service = Feedpipe.from_settings(load_settings(config, env={}))
        metrics = WorkerMetrics()
        settings = replace(service.settings.worker, **{"watch": False})
        parts = WorkerParts(
            ServiceJobs(service, 60), SoleLeader("t:1"), service.clock, settings, None, metrics
        )
        assert Worker(parts).run_once() == 0
        assert len(hub.posts()) == 7  # 6 URLs, one retried
    value = metrics.registry.get_sample_value
    assert value("feedpipe_websub_publishes_total", {"outcome": "ok"}) == 6
    assert value("feedpipe_websub_publishes_total", {"outcome": "failed"}) == 0
    service.close()


# --- the hub ------------------------------------------------------------------------------


@dataclass
class HubSite:
    hub: Hub
    service: Feedpipe
    clock: FixedClock
    out: Path


@pytest.fixture
def hub_site(tmp_path: Path) -> Iterator[HubSite]:
    websub = "[websub]\nserve = true\nallow_private = true\nattempts = 3\nbackoff_seconds = 0\n"
    config = _site(tmp_path, websub=websub)
    clock = FixedClock(T0)
    service = Feedpipe.from_settings(load_settings(config, env={}), clock)
    service.build()
    hub = service.hub()
    yield HubSite(hub, service, clock, tmp_path / "out")
    hub.close()
    service.close()


def _subscribe(hub: Hub, callback: str, **extra: str) -> None:
    form = {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.callback": callback, **extra}
    hub.accept(form)
    assert hub.wait(10)


def test_subscribe_verifies_then_deliveries_are_signed(hub_site: HubSite) -> None:
    with http_server(Behaviour(), "/cb?reader=1") as cb:
        _subscribe(hub_site.hub, cb.url, **{"hub.secret": "s3cret", "hub.lease_seconds": "3600"})
        check = cb.wait("GET", 1, 5)[0]
        assert check.query["hub.mode"] == ["subscribe"] and check.query["reader"] == ["1"]
        assert check.query["hub.lease_seconds"] == ["3600"]
        [sub] = hub_site.service.store.hub_subscriptions(TOPIC, T0)
        assert sub.expires_at == T0 + timedelta(seconds=3600) and sub.secret == "s3cret"
        hub_site.hub.accept({"hub.mode": "publish", "hub.url": TOPIC})
        [delivery] = cb.wait("POST", 1, 10)
    body = (hub_site.out / "category/rust/feed.xml").read_bytes()
    assert delivery.body == body
    assert delivery.headers["content-type"] == "application/rss+xml; charset=utf-8"
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert delivery.headers["x-hub-signature"] == f"sha256={expected}"
    link = delivery.headers["link"]
    assert f'<{hub_site.hub.url}>; rel="hub"' in link and f'<{TOPIC}>; rel="self"' in link
    assert hub_site.hub.url == "http://127.0.0.1:1/websub"


def test_a_failed_verification_subscribes_nobody(hub_site: HubSite) -> None:
    with http_server(Behaviour(echo=False), "/cb") as cb:
        _subscribe(hub_site.hub, cb.url)
        assert len(cb.wait("GET", 1, 5)) == 1
    assert hub_site.service.store.hub_subscriptions(TOPIC, T0) == []
    _subscribe(hub_site.hub, "http://127.0.0.1:9/nobody")  # no answer at all: retried, dropped
    assert hub_site.service.store.hub_subscriptions(TOPIC, T0) == []


def test_unsubscribe_is_verified_too(hub_site: HubSite) -> None:
    with http_server(Behaviour(), "/cb") as cb:
        _subscribe(hub_site.hub, cb.url)
        assert len(hub_site.service.store.hub_subscriptions(TOPIC, T0)) == 1
        hub_site.hub.accept({"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.callback": cb.url})
        assert hub_site.hub.wait(10)
        assert cb.seen[-1].query["hub.mode"] == ["unsubscribe"]
        assert "hub.lease_seconds" not in cb.seen[-1].query
        assert hub_site.service.store.hub_subscriptions(TOPIC, T0) == []
        assert hub_site.hub.distribute(TOPIC) == 0


def test_a_lease_runs_out_unless_renewed(hub_site: HubSite) -> None:
    with http_server(Behaviour(), "/cb") as cb, http_server(Behaviour(), "/renews") as renews:
        _subscribe(hub_site.hub, cb.url, **{"hub.lease_seconds": "120"})
        _subscribe(hub_site.hub, renews.url, **{"hub.lease_seconds": "120"})
        hub_site.clock.advance(timedelta(seconds=100))
        _subscribe(hub_site.hub, renews.url, **{"hub.lease_seconds": "120"})  # renewal
        hub_site.clock.advance(timedelta(seconds=30))  # 130 s: the first lease ran out
        assert hub_site.hub.distribute(TOPIC) == 1
        assert hub_site.hub.wait(10)
        assert cb.posts() == [] and len(renews.posts()) == 1
    subs = hub_site.service.store.hub_subscriptions(TOPIC, T0)
    assert [s.callback for s in subs] == [renews.url]  # the expired one is gone


def test_a_delivery_is_retried_and_gone_unsubscribes(hub_site: HubSite) -> None:
    with (
        http_server(Behaviour(fail_first=2), "/cb") as flaky,
        http_server(Behaviour(post_status=410), "/gone") as gone,
    ):
        _subscribe(hub_site.hub, flaky.url)
        _subscribe(hub_site.hub, gone.url)
        assert hub_site.hub.distribute(TOPIC) == 2
        assert hub_site.hub.wait(10)
        assert len(flaky.posts()) == 3 and len(gone.posts()) == 1
    assert [s.callback for s in hub_site.service.store.hub_subscriptions(TOPIC, T0)] == [flaky.url]


def test_topics_that_are_not_ours_are_refused(hub_site: HubSite) -> None:
    form = {"hub.mode": "subscribe", "hub.topic": "https://other.example/feed.xml"}
    with pytest.raises(ValidationError, match="not a feed of this site"):
        hub_site.hub.accept({**form, "hub.callback": "http://127.0.0.1:9/"})


def test_settings_name_the_bad_key(tmp_path: Path) -> None:
    from feedpipe.errors import ConfigError

    for extra, text in (
        ('[feeds]\nwebsub_hubs = ["ftp://x"]\n', "[feeds] websub_hubs"),
        ("[websub]\nlease_seconds = 100\nmax_lease_seconds = 90\n", "[websub] lease_seconds"),
        ("[websub]\nattempts = 0\n", "[websub] attempts"),
    ):
        path = tmp_path / "c.toml"
        path.write_text(f'[site]\ntitle = "x"\nurl = "https://a.example"\n{extra}')
        with pytest.raises(ConfigError, match=text.replace("[", r"\[").replace("]", r"\]")):
            load_settings(path, env={})


def test_the_single_hub_key_still_works_beside_the_list(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[site]\ntitle = "x"\nurl = "https://a.example"\n[feeds]\n'
        'websub_hub = "https://one.example/"\nwebsub_hubs = ["https://two.example", '
        '"https://one.example"]\n[web]\nbase_url = "https://news.example"\n'
        "[websub]\nserve = true\n"
    )
    settings = load_settings(path, env={})
    assert settings.websub_hubs == (
        "https://one.example",
        "https://two.example",
        "https://news.example/websub",
    )


def test_subscriptions_survive_a_restart(hub_site: HubSite) -> None:
    with http_server(Behaviour(), "/cb") as cb:
        _subscribe(hub_site.hub, cb.url, **{"hub.secret": "k"})
        hub_site.hub.close()
        settings = hub_site.service.settings
        hub_site.service.close()
        again = Feedpipe.from_settings(settings, hub_site.clock)  # a new process, same store
        hub = again.hub()
        try:
            assert hub.distribute(TOPIC) == 1
            assert hub.wait(10)
            [delivery] = cb.posts()
            assert delivery.headers["x-hub-signature"].startswith("sha256=")
        finally:
            hub.close()
            again.close()
