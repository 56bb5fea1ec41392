"""`feedpipe send` and `feedpipe outbox [retry]` through CliRunner, with the .eml transport."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from feedpipe.cli import cli
from tests.helpers import write_post

T0 = "2026-03-01T00:00:00Z"
Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, sqlite_url: str) -> Run:
    """A site with three active subscribers and a post first seen after they subscribed."""
    posts = tmp_path / "posts"
    posts.mkdir()
    write_post(posts, "alpha", "2026-02-01T09:00:00Z", '["Rust"]')
    (tmp_path / "config.toml").write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{posts}"\n[store]\nurl = "{sqlite_url}"\n'
        '[digest]\ntimezone = "UTC"\nsend_time = "08:00"\n',
        encoding="utf-8",
    )

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(tmp_path / "config.toml"), *args])

    assert invoke("sync", "--now", T0).exit_code == 0
    for who in ("ann", "bob", "cyd"):
        added = invoke("subscribers", "add", f"{who}@example.com", "--confirmed", "--now", T0)
        assert added.exit_code == 0, added.output
    write_post(posts, "beta", "2026-03-01T10:00:00Z", '["Rust"]')
    assert invoke("sync", "--now", "2026-03-01T10:00:00Z").exit_code == 0
    return invoke


def test_send_writes_one_eml_per_subscriber_into_the_outbox_folder(
    run: Run, tmp_path: Path
) -> None:
    result = run("send", "--now", "2026-03-02T08:00:00Z")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("send: 3 due, 3 queued in 1 new edition; 3 sent")
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 3
    parsed = [message_from_bytes(f.read_bytes()) for f in files]
    assert sorted(p["To"] for p in parsed) == [f"{w}@example.com" for w in ("ann", "bob", "cyd")]
    assert {p["Date"] for p in parsed} == {"Mon, 02 Mar 2026 08:00:00 +0000"}
    for message in parsed:
        text = message.get_payload(0)
        assert isinstance(text, Message)
        assert b"beta" in text.get_payload(decode=True)
    again = run("send", "--now", "2026-03-02T09:00:00Z")
    assert again.stdout.startswith("send: 0 due, 0 queued in 0 new editions; 0 sent")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3


def test_outbox_shows_counts_and_failures_and_retry_requeues(run: Run) -> None:
    # An internationalised address is valid for email-validator but not sendable as ASCII.
    added = run("subscribers", "add", "ñandú@example.com", "--confirmed", "--now", T0)
    assert added.exit_code == 0, added.output
    sent = run("send", "--now", "2026-03-02T08:00:00Z")
    assert "3 sent, 0 to retry, 1 failed" in sent.stdout
    assert sent.exit_code == 1  # partly failed
    assert "1 message not sent (1 failed, 0 to retry)" in sent.stderr
    shown = run("outbox")
    assert shown.exit_code == 0, shown.output
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert ["queued", "0"] in rows and ["sent", "3"] in rows and ["failed", "1"] in rows
    assert "failing messages by reason:" in shown.stdout
    assert "most recent failing messages:" in shown.stdout
    assert "ñandú@example.com" in shown.stdout.splitlines()[-1]
    assert "not sent:" in shown.stdout.splitlines()[-1]
    retried = run("outbox", "retry", "--now", "2026-03-02T09:00:00Z")
    assert retried.stdout == "re-queued 1 failed message\n"
    again = run("send", "--now", "2026-03-02T09:00:00Z")
    assert "0 sent, 0 to retry, 1 failed" in again.stdout


def test_send_rejects_a_bad_now(run: Run) -> None:
    result = run("send", "--now", "tomorrow")
    assert result.exit_code == 1
    assert "--now 'tomorrow' is not an ISO 8601 time" in result.stderr
