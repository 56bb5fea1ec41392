"""POST /subscribe under abuse: no enumeration by timing, budgets against list bombing, the
honeypot and the proof of work."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from msgspec.structs import replace

from feedpipe.clock import FixedClock
from feedpipe.model import MessageKind
from feedpipe.service import Feedpipe
from feedpipe.store import SqlStore
from feedpipe.web import MemoryMailer, WebConfig, create_app
from feedpipe.web.app import FeedpipeWeb
from feedpipe.web.guard import Limits
from feedpipe.web.hashcash import ProofOfWorkError, challenge, solve, verify
from feedpipe.web.outbox import OutboxMailer
from feedpipe.web.ratelimit import Rate
from tests.test_web_helpers import BASE_URL, TestClient, Web, make_web, web

__all__ = ["web"]
from tests.web_timing import STATES, measure, post_json, seed, spread

OPEN = Limits(Rate(10**6, 60), Rate(10**6, 60), Rate(1, 900))


def outbox_app(w: Web, limits: Limits = OPEN, **web: object) -> FeedpipeWeb:
    """The app as `feedpipe serve` builds it (confirmations go to the store's outbox), with
    `[web]` keys replaced by `web`."""
    settings = w.fp.settings
    settings = replace(settings, **{"web": replace(settings.web, **web)})
    service = Feedpipe(settings, w.fp.store, w.clock)
    return create_app(service, OutboxMailer(service), WebConfig(limits=limits))


def confirmations(store: object) -> int:
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.text("select count(*) from outbox where kind = :k"), {"k": MessageKind.CONFIRM.value}
        ).scalar()
    return int(found or 0)


def settle(app: FeedpipeWeb) -> None:
    app.pages.state.guard.intake.join()


def test_timing_tells_no_state_apart(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> None:
    """100 requests per state, interleaved: each state's median (relative to its rounds, so a
    load on the shared machine cancels out) within 1 ms of every other's; measured once more
    before failing."""
    w = make_web(tmp_path, corpus_dir, clock, OPEN)
    app = outbox_app(w)
    rng = random.Random(15)
    results = []
    for attempt in range(2):
        timings = measure(app, seed(w.fp.store, f"try{attempt}", 100), rng)
        results.append((timings.relative(), timings.medians()))
        if spread(results[-1][0]) < 1.0:
            break
    assert set(results[-1][0]) == set(STATES)
    assert spread(results[-1][0]) < 1.0, results
    settle(app)
    w.fp.close()


def test_3000_addresses_from_3000_sources_do_not_become_3000_mails(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    limits = Limits(Rate(10, 600), Rate(5, 3600), Rate(1, 900))  # the defaults
    app = outbox_app(w, limits, confirmations_per_hour=100, confirmations_per_domain_per_hour=10)
    codes = [
        post_json(app, "/api/subscribe", {"email": f"victim{i}@d{i % 60}.example"}, f"10.0.{i}")
        for i in range(3000)
    ]
    assert codes == [202] * 3000  # every source is under its own limit
    settle(app)
    assert confirmations(w.fp.store) == 100  # the site's hourly budget
    # A second process (a restart, another server) shares the budget: it is in the store.
    again = outbox_app(w, limits, confirmations_per_hour=100)
    assert post_json(again, "/api/subscribe", {"email": "late@fresh.example"}, "10.9.9") == 202
    settle(again)
    assert confirmations(w.fp.store) == 100
    w.fp.close()


def test_one_domain_gets_at_most_its_cap(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    app = outbox_app(w, confirmations_per_domain_per_hour=3)
    for i in range(10):
        assert post_json(app, "/api/subscribe", {"email": f"p{i}@Corp.example"}) == 202
    assert post_json(app, "/api/subscribe", {"email": "other@elsewhere.example"}) == 202
    settle(app)
    assert confirmations(w.fp.store) == 3 + 1
    w.fp.close()


def test_a_filled_honeypot_gets_the_same_reply_and_nothing_is_queued(web: Web) -> None:
    form = web.client.get("/subscribe").text
    assert 'name="website"' in form and 'tabindex="-1"' in form
    human = web.client.post("/subscribe", data={"email": "human@example.com"})
    bot = web.client.post("/subscribe", data={"email": "bot@example.com", "website": "http://x"})
    assert bot.status_code == human.status_code == 200
    assert bot.text == human.text
    assert web.confirmations("bot@example.com") == []
    assert web.fp.store.subscriber_by_email("bot@example.com") is None
    assert len(web.confirmations("human@example.com")) == 1


def test_hashcash_verifies_solutions_and_refuses_forgeries() -> None:
    key, other = b"k" * 32, b"o" * 32
    stamp = challenge(key, 8, 1000)
    nonce = solve(stamp, 8)
    verify(key, 8, stamp, nonce, 1000 + 60)
    for args, why in [
        ((other, 8, stamp, nonce, 1000), "not valid"),  # another key: forged
        ((key, 9, stamp, nonce, 1000), "out of date"),  # the difficulty changed
        ((key, 8, stamp, nonce, 1000 + 3601), "expired"),
        ((key, 8, stamp, "", 1000), "missing"),
        ((key, 8, "9" + stamp[1:], nonce, 1000), "not valid"),  # bits edited: the mac fails
    ]:
        with pytest.raises(ProofOfWorkError, match=why):
            verify(*args)
    wrong = next(str(n) for n in range(1000) if str(n) != nonce and not _solves(stamp, n))
    with pytest.raises(ProofOfWorkError, match="not solved"):
        verify(key, 8, stamp, wrong, 1000)


def _solves(stamp: str, nonce: int) -> bool:
    try:
        verify(b"k" * 32, 8, stamp, str(nonce), 1000)
    except ProofOfWorkError:
        return False
    return True


def test_proof_of_work_is_asked_checked_and_single_use(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    settings = w.fp.settings
    web_settings = replace(settings.web, **{"subscribe_proof_of_work": 8})
    service = Feedpipe(replace(settings, **{"web": web_settings}), w.fp.store, w.clock)
    mailer = MemoryMailer()
    app = create_app(service, mailer, WebConfig(limits=OPEN))
    client = TestClient(app, base_url=BASE_URL)
    asked = client.get("/api/subscribe/challenge").json()
    assert asked["bits"] == 8 and asked["challenge"].startswith("8:")
    assert client.post("/api/subscribe", json={"email": "a@example.com"}).status_code == 422
    nonce = solve(asked["challenge"], 8)
    body = {"email": "a@example.com", "pow_challenge": asked["challenge"], "pow_nonce": nonce}
    assert client.post("/api/subscribe", json=body).status_code == 202
    replay = client.post("/api/subscribe", json={**body, "email": "b@example.com"})
    assert replay.status_code == 422 and "used already" in replay.json()["error"]
    form = client.get("/subscribe").text
    assert 'data-bits="8"' in form and "/static/hashcash.js" in form
    settle(app)
    assert [m.to for m in mailer.queued("confirmation")] == ["a@example.com"]
    off = client.get("/api/subscribe/challenge")  # the same app: bits stay; w's app has none
    assert off.json()["bits"] == 8
    assert w.client.get("/api/subscribe/challenge").json() == {"challenge": "", "bits": 0}
    w.fp.close()


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_the_forms_script_finds_a_nonce_the_server_accepts(tmp_path: Path) -> None:
    """web/static/hashcash.js (its SHA-256 in plain JavaScript) run by node on a stub form."""
    script = Path(__file__).resolve().parents[1] / "src/feedpipe/web/static/hashcash.js"
    key = b"k" * 32
    stamp = challenge(key, 12, 1000)
    stub = (
        "var handlers = [], answer = {value: ''};\n"
        f"var field = {{value: {stamp!r}, dataset: {{bits: '12'}},\n"
        "  form: {addEventListener: function (n, f) { handlers.push(f); }}};\n"
        "var document = {getElementById: function (id) {\n"
        "  return id === 'pow_challenge' ? field : answer; }};\n"
        f"{script.read_text(encoding='utf-8')}\n"
        "handlers.forEach(function (f) { f(); }); console.log(answer.value);\n"
    )
    run = subprocess.run(["node", "-e", stub], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    verify(key, 12, stamp, run.stdout.strip(), 1000)
