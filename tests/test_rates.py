"""Bounce and complaint rates (per edition, 7 and 30 days) in status, metrics and the admin
JSON; above the complaint-rate limit the breaker pauses sending until an operator resumes."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.model import OutboxState
from feedpipe.model.hygiene import Rates
from feedpipe.outbox.rates import complaint_pause
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from feedpipe.web import MemoryMailer, WebConfig, create_app
from feedpipe.web.guard import Limits
from feedpipe.web.ratelimit import Rate
from feedpipe.worker.metrics import WorkerMetrics
from feedpipe.worker.status import deliverability
from tests.inbound_samples import ENV, arf, headers, mail, send, sent_site
from tests.test_web_helpers import ADMIN, BASE_URL, TestClient


@given(st.integers(0, 10_000), st.integers(0, 100), st.floats(0.0001, 0.5), st.integers(1, 500))
def test_sending_pauses_exactly_above_the_limit_among_enough_messages(
    sent: int, complaints: int, limit: float, min_sent: int
) -> None:
    rates = Rates("7d", sent, 0, min(complaints, sent))
    reason = complaint_pause(rates, limit, min_sent)
    assert (reason is not None) == (sent >= min_sent and rates.complaint_rate > limit)
    if reason:
        assert reason.startswith("complaint rate ") and f"of {sent} messages" in reason


def _site(tmp_path: Path, sqlite_url: str) -> tuple[Feedpipe, FixedClock, Path]:
    site = sent_site(tmp_path, sqlite_url)
    config = site.config
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[email]\n", "[email]\nrate_min_sent = 4\ncomplaint_rate_limit = 0.2\n"
        ),
        encoding="utf-8",
    )
    site.fp.close()
    clock = FixedClock(site.clock.now())
    fp = Feedpipe.from_settings(load_settings(config, env=ENV), clock)
    fp.inbound.process(arf(headers(site.sent[0]), site.sent[0].recipient))
    return fp, clock, config


def test_a_complaint_rate_above_the_limit_pauses_until_resumed(
    tmp_path: Path, sqlite_url: str
) -> None:
    fp, _clock, config = _site(tmp_path, sqlite_url)
    with fp:
        ids = [s.id for s in fp.store.subscribers()][1:]
        mail(fp, ids, post_id=2)
        send(fp)  # 1 complaint of 4 sent: 25 % > 20 %
        breaker = fp.outbox.breaker()
        assert breaker.paused == ("complaint rate 25.00% over 7d (1 of 4 messages) is above 20.00%")
        assert breaker.probe_at is None  # no probe: a person must look
        assert fp.outbox.counts()[OutboxState.QUEUED] == 3
        now = fp.clock.now().isoformat()
        run = CliRunner().invoke(cli, ["--config", str(config), "status", "--now", now], env=ENV)
        assert "sending paused: complaint rate 25.00%" in run.output
        assert "report the digests as spam" in run.output and "no probes" in run.output
        lines = run.output.splitlines()
        seven = next(line for line in lines if line.startswith("7d "))
        assert seven.split() == ["7d", "4", "0", "(0.00%)", "1", "(25.00%)"]
        fp.outbox.resume()  # accepted: the count starts over
        send(fp)
        assert fp.outbox.counts()[OutboxState.SENT] == 7
        assert not fp.outbox.breaker().is_open


def test_rates_in_status_json_metrics_and_the_admin_api(tmp_path: Path, sqlite_url: str) -> None:
    fp, clock, config = _site(tmp_path, sqlite_url)
    with fp:
        clock.advance(timedelta(days=8))  # out of the 7-day window, still in the 30-day one
        found = deliverability(fp)
        assert found["windows"]["7d"]["complaints"] == 0
        assert found["windows"]["30d"] == {
            "sent": 4, "bounces": 0, "complaints": 1, "bounce_rate": 0.0, "complaint_rate": 0.25
        }  # fmt: skip
        (edition,) = found["editions"]
        assert (edition["sent"], edition["complaints"]) == (4, 1)
        args = ["--config", str(config), "status", "--json", "--now", fp.clock.now().isoformat()]
        out = CliRunner().invoke(cli, args, env=ENV)
        assert json.loads(out.output)["deliverability"]["editions"][0]["complaint_rate"] == 0.25
        metrics = WorkerMetrics(rates=lambda: deliverability(fp))
        text = generate_latest(metrics.registry).decode()
        assert 'feedpipe_complaint_rate{window="30d"} 0.25' in text
        assert 'feedpipe_bounce_rate{window="7d"} 0.0' in text
        limits = Limits(Rate(100, 60), Rate(100, 60), Rate(1, 900))
        web = create_app(fp, MemoryMailer(), WebConfig(admin_token=ADMIN, limits=limits))
        with TestClient(web, base_url=BASE_URL) as client:
            auth = {"authorization": f"Bearer {ADMIN}"}
            got = client.get("/api/admin/deliverability", headers=auth)
            assert got.status_code == 200, got.text
            body = got.json()
            assert body["windows"]["30d"]["complaint_rate"] == 0.25
            assert body["complaint_rate_limit"] == 0.2
            assert body["inbound"] == {"processed": 1, "unprocessed": 0}
