"""Inbound over IMAP against a real Dovecot (its own instance, tests/imap_server.py): `feedpipe
run --once` polls the folder, moves what it processed, keeps the rest; a poller that dies
mid-folder processes nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted

from feedpipe.mail.imap import InboundError, poll
from feedpipe.mail.verp import Verp
from feedpipe.model import SubscriberStatus
from feedpipe.model.hygiene import InboundStatus
from feedpipe.settings import load_settings
from tests.imap_server import ImapServer, dovecot, missing
from tests.inbound_samples import BOUNCES, ENV, SECRET, Site, dsn, headers, sent_site, simple

SRC = str(Path(__file__).parents[1] / "src")
pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")
PROCESSED = "feedpipe-processed"


@pytest.fixture
def imap() -> Iterator[ImapServer]:
    with dovecot() as server:
        yield server


def configure(site: Site, server: ImapServer) -> dict[str, str]:
    text = site.config.read_text(encoding="utf-8") + (
        f'[inbound]\nimap_host = "{server.host}"\nimap_port = {server.port}\n'
        f'imap_user = "{server.user}"\ntls = "none"\nprocessed_folder = "{PROCESSED}"\n'
    )
    site.config.write_text(text, encoding="utf-8")
    return {**ENV, "FEEDPIPE_IMAP_PASSWORD": server.password}


def deliver(server: ImapServer, *messages: bytes) -> None:
    with MailBoxUnencrypted(server.host, server.port).login(server.user, server.password) as box:
        for raw in messages:
            box.append(raw, "INBOX")


def folder(server: ImapServer, name: str) -> list[str]:
    """Message-IDs in a folder."""
    with MailBoxUnencrypted(server.host, server.port).login(
        server.user, server.password, name
    ) as box:
        return sorted(str(m.obj["Message-ID"]) for m in box.fetch(mark_seen=False))


def bounce_of(site: Site, index: int, message_id: str) -> bytes:
    ref = site.sent[index]
    to = Verp(BOUNCES, SECRET).sender(ref.outbox_id)
    diag = f"550 5.1.1 <{ref.recipient}>: Recipient address rejected: User unknown"
    return dsn(to, [(ref.recipient, "failed", "5.1.1", diag)], headers(ref), message_id)


def test_feedpipe_run_polls_the_mailbox(tmp_path: Path, sqlite_url: str, imap: ImapServer) -> None:
    site = sent_site(tmp_path, sqlite_url)
    env = configure(site, imap)
    vacation = simple(site.sent[1].recipient, "digest@blog.example.com", "Automatic reply",
                      "<ooo@x>", "Auto-Submitted: auto-replied")  # fmt: skip
    chat = simple("friend@example.org", "bounces@blog.example.com", "Hello", "<chat@x>")
    deliver(imap, bounce_of(site, 0, "<b0@mx>"), vacation, chat)
    done = subprocess.run(
        [sys.executable, "-m", "feedpipe", "--config", str(site.config), "run", "--once"],
        capture_output=True,
        env={**os.environ, **env, "PYTHONPATH": SRC},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert "inbound" in done.stderr.decode() + done.stdout.decode()
    assert folder(imap, "INBOX") == ["<chat@x>"]  # kept for the operator
    assert folder(imap, PROCESSED) == ["<b0@mx>", "<ooo@x>"]
    assert site.fp.subscriptions.get(site.sent[0].recipient).status is SubscriberStatus.BOUNCED
    kept = site.fp.inbound.unprocessed()
    assert [r.key for r in kept] == ["<chat@x>"]
    site.fp.close()


def test_a_poller_that_dies_mid_folder_processes_nothing_twice(
    tmp_path: Path, sqlite_url: str, imap: ImapServer
) -> None:
    site = sent_site(tmp_path, sqlite_url)
    env = configure(site, imap)
    settings = load_settings(site.config, env=env).inbound
    deliver(imap, *(bounce_of(site, i, f"<b{i}@mx>") for i in range(3)))
    handled: list[bytes] = []

    def crash_after_the_second(raw: bytes) -> InboundStatus:
        handled.append(raw)
        status = site.fp.inbound.process(raw).status
        if len(handled) == 2:  # committed, not yet moved
            raise KeyboardInterrupt
        return status

    with pytest.raises(KeyboardInterrupt):
        poll(settings, crash_after_the_second)
    assert folder(imap, PROCESSED) == ["<b0@mx>"]
    report = poll(settings, lambda raw: site.fp.inbound.process(raw).status)
    assert (report.seen, report.processed, report.kept) == (2, 2, 0)
    assert folder(imap, "INBOX") == [] and len(folder(imap, PROCESSED)) == 3
    events = site.fp.store.rates_since(site.clock.now().replace(year=2000), "all")
    assert events.bounces == 3  # one each, the re-polled one not counted again
    assert {e.reason.value for e in site.fp.store.suppressions()} == {"bounce"}
    site.fp.close()


def test_a_wrong_password_is_one_clear_error(
    tmp_path: Path, sqlite_url: str, imap: ImapServer
) -> None:
    site = sent_site(tmp_path, sqlite_url)
    env = configure(site, imap) | {"FEEDPIPE_IMAP_PASSWORD": "wrong"}
    settings = load_settings(site.config, env=env).inbound
    with pytest.raises(InboundError, match="refused the login of 'bounces'"):
        poll(settings, lambda raw: InboundStatus.PROCESSED)
    site.fp.close()


def test_check_config_logs_in_with_connect(
    tmp_path: Path, sqlite_url: str, imap: ImapServer
) -> None:
    from click.testing import CliRunner

    from feedpipe.cli import cli

    site = sent_site(tmp_path, sqlite_url)
    env = configure(site, imap)
    site.fp.close()
    args = ["--config", str(site.config), "check-config"]
    missing_password = CliRunner().invoke(cli, args, env=ENV)
    assert missing_password.exit_code == 2
    assert "$FEEDPIPE_IMAP_PASSWORD is not set" in missing_password.output
    done = CliRunner().invoke(cli, [*args, "--connect"], env=env)
    assert f"{imap.host}:{imap.port} as bounces: logged in, folder 'INBOX'" in done.output
    assert "*** (from $FEEDPIPE_IMAP_PASSWORD)" in done.output
    assert imap.password not in done.output
