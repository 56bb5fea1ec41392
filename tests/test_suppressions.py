"""The suppression list: consulted at fill, claim and import; only a double opt-in lifts it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedpipe.cli import cli
from feedpipe.clock import FixedClock
from feedpipe.errors import NotFoundError, SuppressedError
from feedpipe.model import Action, Decision, MessageKind, OutboxState, SubscriberStatus
from feedpipe.model.hygiene import Suppression, SuppressionReason
from feedpipe.service import Feedpipe
from feedpipe.store import SqlStore
from feedpipe.subscriptions.fields import SubscribeInput
from feedpipe.web.outbox import OutboxMailer
from tests.outbox_helpers import T0, add_subscribers, edition, queue, recipient, settings
from tests.test_web_helpers import ADMIN, Web
from tests.test_web_helpers import web as web  # the fixture


def _entry(email: str, reason: SuppressionReason = SuppressionReason.MANUAL) -> Suppression:
    return Suppression(email, reason, "test", T0, "why")


def test_the_list_keeps_the_first_entry_and_ignores_case(store: SqlStore) -> None:
    assert store.suppress(_entry("Ada@Example.com", SuppressionReason.COMPLAINT))
    assert not store.suppress(_entry("ada@example.COM", SuppressionReason.BOUNCE))
    found = store.suppressed(["ADA@example.com", "bob@example.com"])
    assert list(found) == ["ada@example.com"]
    assert found["ada@example.com"].reason is SuppressionReason.COMPLAINT
    assert [e.email for e in store.suppressions()] == ["Ada@Example.com"]
    assert store.unsuppress("ADA@EXAMPLE.COM") and not store.unsuppress("ada@example.com")


def test_a_claim_cancels_digests_to_suppressed_addresses_but_not_confirmations(
    tmp_path: Path, store_url: str
) -> None:
    config = settings(tmp_path, store_url)
    fp = Feedpipe(config, SqlStore.open(store_url), FixedClock(T0))
    with fp:
        ids = add_subscribers(fp.store, 3)
        queue(fp.store, edition(config), ids)
        # Listed without a status change (as an import from another tool would): the claim
        # is the last line of defence.
        listed = recipient(ids[1])  # the queued digests go to recipient(id)'s address
        fp.store.suppress(_entry(listed.email))
        fp.outbox.queue_message(listed, "Confirm", "text", "<p>html</p>", MessageKind.CONFIRM)
        claim = fp.store.claim_outbox("w", T0 + timedelta(seconds=1), timedelta(minutes=1), 10)
        assert claim.cancelled == 1
        got = {(m.recipient.email, m.edition_key[:8]) for m in claim.messages}
        digest = edition(config).key[:8]
        assert got == {
            (recipient(ids[0]).email, digest),
            (listed.email, "confirm-"),
            (recipient(ids[2]).email, digest),
        }
        states = [s for _, s, _, _ in fp.store.outbox_messages(ids[1])]
        assert states == [OutboxState.CANCELLED, OutboxState.QUEUED]  # leased, not yet taken


def test_the_fill_skips_suppressed_recipients(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "a.md").write_text(
        '---\ntitle: "A"\ndate: 2026-03-01T09:00:00Z\n---\nBody.\n', encoding="utf-8"
    )
    clock = FixedClock(T0 - timedelta(days=1))
    fp = Feedpipe(settings(tmp_path, sqlite_url), SqlStore.open(sqlite_url), clock)
    with fp:
        add_subscribers(fp.store, 3)
        fp.sync()
        fp.store.suppress(_entry("USER2@example.com"))
        clock.set(T0 + timedelta(days=1, hours=1))
        report = fp.outbox.fill()
        assert report.queued == 2
        claim = fp.store.claim_outbox("w", clock.now(), timedelta(minutes=1), 10)
        assert {m.recipient.email for m in claim.messages} == {
            "user0@example.com",
            "user1@example.com",
        }


def test_imports_and_adds_never_revive_a_suppressed_address(
    tmp_path: Path, sqlite_url: str
) -> None:
    fp = Feedpipe(settings(tmp_path, sqlite_url), SqlStore.open(sqlite_url), FixedClock(T0))
    with fp:
        subs = fp.subscriptions
        subs.add({"email": "ada@example.com", "status": "active"})
        entry, added = subs.suppressions.add("Ada@example.com", SuppressionReason.COMPLAINT)
        assert added and entry.reason is SuppressionReason.COMPLAINT
        assert subs.get("ada@example.com").status is SubscriberStatus.COMPLAINED
        subs.remove("ada@example.com")
        report = subs.import_csv(
            io.StringIO("email,status\nADA@example.com,active\nbob@example.com,active\n")
        )
        assert report.added == 1
        assert [(e.line, e.reason.split(" (")[0]) for e in report.errors] == [
            (2, "Ada@example.com is suppressed")
        ]
        assert "only a new subscription confirmed by the address itself" in report.errors[0].reason
        with pytest.raises(SuppressedError):
            subs.add({"email": "ada@example.com", "status": "active"})
        assert subs.subscribers()[0].email == "bob@example.com"


def test_only_a_new_double_opt_in_lifts_a_suppression(tmp_path: Path, sqlite_url: str) -> None:
    fp = Feedpipe(settings(tmp_path, sqlite_url), SqlStore.open(sqlite_url), FixedClock(T0))
    with fp:
        subs = fp.subscriptions.with_mailer(OutboxMailer(fp))
        sub = subs.add({"email": "ada@example.com", "status": "active"})
        subs.apply(sub.id, Action.BOUNCE)
        assert fp.store.suppressed(["ada@example.com"])
        again = subs.request(SubscribeInput(email="ada@example.com"))
        assert again.status is SubscriberStatus.PENDING
        assert fp.store.suppressed(["ada@example.com"])  # asking is not enough
        confirmed = subs.apply(again.id, Action.CONFIRM)
        assert confirmed.status is SubscriberStatus.ACTIVE
        assert not fp.store.suppressed(["ada@example.com"])


def test_the_bounce_limit_suppresses_with_the_smtp_source(tmp_path: Path, store_url: str) -> None:
    config = settings(tmp_path, store_url, bounce_limit=1)
    fp = Feedpipe(config, SqlStore.open(store_url), FixedClock(T0))
    with fp:
        ids = add_subscribers(fp.store, 1)
        queue(fp.store, edition(config), ids)
        claim = fp.store.claim_outbox("w", T0, timedelta(minutes=1), 10)
        m = claim.messages[0]
        d = Decision(m.outbox_id, ids[0], OutboxState.FAILED, None, True, 550, "5.1.1 no", True)
        report = fp.store.record_outbox("w", [d], T0, 1)
        assert report.bounced_subscribers == (ids[0],)
        (entry,) = fp.store.suppressions()
        assert (entry.email, entry.reason, entry.source) == (
            "user0@example.com",
            SuppressionReason.BOUNCE,
            "smtp",
        )
        assert fp.store.rates_since(T0 - timedelta(days=7), "7d").bounces == 1


def test_remove_names_an_address_that_is_not_listed(tmp_path: Path, sqlite_url: str) -> None:
    fp = Feedpipe(settings(tmp_path, sqlite_url), SqlStore.open(sqlite_url), FixedClock(T0))
    with fp, pytest.raises(NotFoundError, match=r"nobody@example\.com is not suppressed"):
        fp.subscriptions.suppressions.remove("nobody@example.com")


def test_cli_add_list_export_remove(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "posts").mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{tmp_path / "posts"}"\n[store]\nurl = "{sqlite_url}"\n',
        encoding="utf-8",
    )

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert run("suppressions", "add", "Ada@Example.com", "--reason", "complaint") == (
        "suppressed Ada@example.com (complaint)\n"
    )
    assert "was already suppressed (complaint from cli" in run(
        "suppressions", "add", "ada@example.com"
    )
    run(
        "suppressions",
        "add",
        "bob@example.com",
        "--detail",
        "asked by phone",
        "--now",
        "2026-01-01",
    )
    lines = run("suppressions", "list").splitlines()
    assert lines[0].split() == ["EMAIL", "REASON", "SOURCE", "SINCE", "(UTC)", "DETAIL"]
    rows = [line.split()[:3] for line in lines[2:-1]]
    assert rows == [["Ada@example.com", "complaint", "cli"], ["bob@example.com", "manual", "cli"]]
    assert lines[-1] == "2 addresses suppressed"
    assert run("suppressions", "list", "--reason", "manual").splitlines()[-1] == (
        "1 address suppressed"
    )
    exported = list(csv.DictReader(io.StringIO(run("suppressions", "export"))))
    assert [(r["email"], r["reason"], r["detail"]) for r in exported] == [
        ("Ada@example.com", "complaint", ""),
        ("bob@example.com", "manual", "asked by phone"),
    ]
    assert run("suppressions", "remove", "BOB@example.com") == (
        "removed bob@example.com from the suppression list (was: manual)\n"
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "suppressions", "remove", "x@y.org"])
    assert result.exit_code == 1 and "x@y.org is not suppressed" in result.output


def test_admin_json(web: Web) -> None:
    auth = {"authorization": f"Bearer {ADMIN}"}
    client = web.client
    assert client.get("/api/admin/suppressions").status_code == 401
    made = client.post(
        "/api/admin/suppressions",
        json={"email": "Ada@Example.com", "reason": "bounce"},
        headers=auth,
    )
    assert made.status_code == 201, made.text
    assert made.json()["suppression"]["email"] == "Ada@example.com"
    assert made.json()["suppression"]["source"] == "api"
    again = client.post("/api/admin/suppressions", json={"email": "ada@example.com"}, headers=auth)
    assert again.status_code == 200 and again.json()["added"] is False
    bad = client.post("/api/admin/suppressions", json={"email": "not an address"}, headers=auth)
    assert bad.status_code == 422
    listed = client.get("/api/admin/suppressions", headers=auth).json()
    assert listed["count"] == 1 and listed["suppressions"][0]["reason"] == "bounce"
    gone = client.delete("/api/admin/suppressions/ADA@example.com", headers=auth)
    assert gone.status_code == 200 and gone.json()["suppression"]["reason"] == "bounce"
    assert client.delete("/api/admin/suppressions/ada@example.com", headers=auth).status_code == 404
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/admin/suppressions"])
    assert "delete" in paths["/api/admin/suppressions/{email}"]
