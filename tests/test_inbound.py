"""Inbound mail through `feedpipe inbound` (a subprocess, as an MTA pipe runs it): hand-made
DSNs and ARF reports about messages really sent, flufl.bounce's real-world samples, and the
edge cases (several recipients, a message never sent, a forged VERP token, duplicates)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from feedpipe.mail.inbound import Kind, Verdict, read_inbound
from feedpipe.mail.verp import Verp
from feedpipe.model import SubscriberStatus
from feedpipe.model.hygiene import InboundStatus, SuppressionReason
from tests.inbound_samples import (
    BOUNCES,
    ENV,
    FIXTURES,
    SECRET,
    Site,
    arf,
    dsn,
    headers,
    mail,
    send,
    sent_site,
    simple,
)

SRC = str(Path(__file__).parents[1] / "src")
USER_UNKNOWN = "550 5.1.1 <{}>: Recipient address rejected: User unknown in virtual table"
MAILBOX_FULL = "452 4.2.2 <{}>: Mailbox full"


def inbound(site: Site, raw: bytes, *args: str) -> str:
    """`feedpipe inbound` in its own process; its output (exit status 0 checked)."""
    env = {**os.environ, **ENV, "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, "-m", "feedpipe", "--config", str(site.config), "inbound", *args],
        input=raw,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


@pytest.fixture
def site(tmp_path: Path, sqlite_url: str) -> Iterator[Site]:
    made = sent_site(tmp_path, sqlite_url)
    yield made
    made.fp.close()


def status(site: Site, email: str) -> SubscriberStatus:
    return site.fp.subscriptions.get(email).status


def verp(site: Site, index: int) -> str:
    return Verp(BOUNCES, SECRET).sender(site.sent[index].outbox_id)


def test_a_dsn_by_its_verp_token_bounces_and_suppresses(site: Site) -> None:
    ref = site.sent[0]
    failed = (ref.recipient, "failed", "5.1.1", USER_UNKNOWN.format(ref.recipient))
    raw = dsn(verp(site, 0), [failed], headers(ref))
    out = inbound(site, raw)
    assert out.splitlines()[0] == "inbound: dsn <dsn-1@mx.example.net>"
    assert f"{ref.recipient}: hard bounce: suppressed (550 5.1.1 <{ref.recipient}>: " in out
    assert status(site, ref.recipient) is SubscriberStatus.BOUNCED
    (entry,) = site.fp.store.suppressions()
    assert (entry.email, entry.reason, entry.source) == (ref.recipient, SuppressionReason.BOUNCE,
                                                         "dsn")  # fmt: skip
    again = inbound(site, raw)  # processed exactly once
    assert "already processed; nothing done again" in again
    rates = site.fp.store.rates_since(site.clock.now() - timedelta(days=7), "7d")
    assert (rates.sent, rates.bounces) == (4, 1)


def test_several_recipients_in_one_dsn(site: Site) -> None:
    a, b, c = site.sent[0], site.sent[1], site.sent[2]
    raw = dsn(
        "digest@blog.example.com",  # no VERP: the returned Message-ID and the addresses tell
        [
            (a.recipient, "failed", "5.1.1", USER_UNKNOWN.format(a.recipient)),
            (b.recipient, "failed", "4.2.2", MAILBOX_FULL.format(b.recipient)),
            (c.recipient, "delayed", "4.4.1", "connect to mx.example.com: Connection timed out"),
        ],
        headers(a),
    )
    out = inbound(site, raw)
    assert f"{a.recipient}: hard bounce: suppressed" in out
    assert f"{b.recipient}: soft bounce: counted" in out
    assert f"{c.recipient}: delayed: 4.4.1" in out and "nothing to do" in out
    assert [status(site, r.recipient) for r in (a, b, c)] == [
        SubscriberStatus.BOUNCED, SubscriberStatus.ACTIVE, SubscriberStatus.ACTIVE
    ]  # fmt: skip
    assert site.fp.store.soft_bounces(b.subscriber_id, site.clock.now() - timedelta(days=1)) == 1


def test_a_dsn_for_a_message_never_sent_is_kept(site: Site) -> None:
    stranger = "someone@elsewhere.example"
    original = "From: x@elsewhere.example\r\nTo: someone@elsewhere.example\r\nMessage-ID: <n@x>\r\n"
    raw = dsn("digest@blog.example.com", [(stranger, "failed", "5.1.1", USER_UNKNOWN.format(
        stranger))], original, "<dsn-foreign@mx>")  # fmt: skip
    out = inbound(site, raw)
    assert "kept for the operator: about <n@x>, a message feedpipe never sent" in out
    listed = inbound(site, b"", "--list")
    assert "<dsn-foreign@mx>" in listed and listed.splitlines()[-1] == (
        "1 message kept for the operator"
    )
    assert not site.fp.store.suppressions()


def test_a_forged_verp_token_is_refused(site: Site) -> None:
    ref = site.sent[1]
    real = verp(site, 1)
    forged = real.replace(
        real.split("-")[1][:3], "aaa" if real.split("-")[1][:3] != "aaa" else "bbb"
    )
    raw = dsn(forged, [(ref.recipient, "failed", "5.1.1", USER_UNKNOWN.format(ref.recipient))],
              headers(ref, forged), "<dsn-forged@mx>")  # fmt: skip
    out = inbound(site, raw)
    assert "kept for the operator: refused:" in out and "not one feedpipe made" in out
    assert status(site, ref.recipient) is SubscriberStatus.ACTIVE
    assert not site.fp.store.suppressions()


def test_complaints_suppress_at_once_including_microsofts_sparse_reports(site: Site) -> None:
    yahoo, microsoft = site.sent[2], site.sent[3]
    out = inbound(site, arf(headers(yahoo, verp(site, 2)), yahoo.recipient))
    assert f"{yahoo.recipient}: complaint: suppressed (feedback report: abuse)" in out
    sparse = arf(headers(microsoft), None, "<jmrp-1@hotmail>", sparse=True)
    assert not read_inbound(sparse).reports  # it names nobody: the Message-ID tells
    out = inbound(site, sparse)
    assert f"{microsoft.recipient}: complaint: suppressed" in out
    for ref in (yahoo, microsoft):
        assert status(site, ref.recipient) is SubscriberStatus.COMPLAINED
    reasons = {e.email: e.reason for e in site.fp.store.suppressions()}
    assert set(reasons.values()) == {SuppressionReason.COMPLAINT}
    rates = site.fp.store.rates_by_edition(5)
    assert [(r.sent, r.complaints) for r in rates] == [(4, 2)]


def test_auto_replies_unsubscribes_and_the_rest(site: Site) -> None:
    ref = site.sent[0]
    vacation = simple(ref.recipient, "digest@blog.example.com", "Out of Office: New posts",
                      "<ooo@example.com>", "Auto-Submitted: auto-replied")  # fmt: skip
    assert "auto-reply: ignored" in inbound(site, vacation)
    leave = simple(ref.recipient.upper(), "unsubscribe@blog.example.com", "stop", "<u@example>")
    assert f"unsubscribed {ref.recipient}" in inbound(site, leave)
    assert status(site, ref.recipient) is SubscriberStatus.UNSUBSCRIBED
    chat = simple("friend@example.org", "digest@blog.example.com", "Nice post!", "<chat@x>")
    assert "kept for the operator: not a bounce" in inbound(site, chat)
    records = {r.key: r for r in site.fp.store.inbound_records(None)}
    assert records["<ooo@example.com>"].status is InboundStatus.PROCESSED
    assert records["<chat@x>"].status is InboundStatus.UNPROCESSED
    assert site.fp.inbound.unprocessed()[0].raw is None  # listed without its bytes


def test_soft_bounces_suppress_at_the_limit_and_a_delivery_resets(site: Site) -> None:
    ref = site.sent[1]

    def soft(n: int) -> None:
        raw = dsn(verp(site, 1), [(ref.recipient, "failed", "4.2.2", MAILBOX_FULL.format(
            ref.recipient))], headers(ref), f"<soft-{n}@mx>")  # fmt: skip
        site.fp.inbound.process(raw)
        site.clock.advance(timedelta(days=1))

    soft(1)
    soft(2)
    mail(site.fp, [ref.subscriber_id], post_id=2)
    send(site.fp)  # delivered: the count starts over
    soft(3)
    soft(4)
    assert status(site, ref.recipient) is SubscriberStatus.ACTIVE
    soft(5)  # the third since the delivery (soft_bounce_limit = 3)
    assert status(site, ref.recipient) is SubscriberStatus.BOUNCED
    (entry,) = site.fp.store.suppressions()
    assert entry.reason is SuppressionReason.SOFT_BOUNCE and entry.detail.startswith("3 soft")


# flufl.bounce's real-world samples: (file, kind, {address: verdict})
SAMPLES = {
    "postfix_01.txt": (Kind.BOUNCE, {"xxxxx@local.ie": Verdict.HARD}),
    "qmail_01.txt": (Kind.BOUNCE, {"userx@example.de": Verdict.HARD}),
    "exim_01.txt": (Kind.BOUNCE, {"userx@its.example.nl": Verdict.HARD}),
    "yahoo_01.txt": (Kind.BOUNCE, {"userx@example.com": Verdict.HARD}),
    "microsoft_01.txt": (Kind.BOUNCE, {"userx@example.COM": Verdict.HARD}),
    "aol_01.txt": (Kind.BOUNCE, {"screenname@aol.com": Verdict.HARD}),
    "sendmail_01.txt": (Kind.BOUNCE, {"zzzzz@nfg.nl": Verdict.HARD,
                                      "zzzzz@shaft.coal.nl": Verdict.HARD}),
    "groupwise_01.txt": (Kind.BOUNCE, {"userx@example.EDU": Verdict.HARD}),
    "smtp32_04.txt": (Kind.BOUNCE, {"after_another@example.net": Verdict.HARD,
                                    "one_bad_address@example.net": Verdict.HARD}),
    "netscape_01.txt": (Kind.BOUNCE, {"aaaaa@corel.com": Verdict.HARD,
                                      "bbbbb@corel.com": Verdict.HARD}),
    "simple_03.txt": (Kind.BOUNCE, {"userx@example.za": Verdict.SOFT}),
    "dsn_04.txt": (Kind.DSN, {"HAASM@yogi.urz.example.ch": Verdict.HARD}),
    "dsn_10.txt": (Kind.DSN, {"anne.person@dom.ain": Verdict.HARD}),
    "dsn_06.txt": (Kind.DSN, {"userx@example.com": Verdict.NONE}),
    "simple_42.txt": (Kind.DSN, {"david...@gmail.com": Verdict.POLICY}),
    "qmail_08.txt": (Kind.AUTO_REPLY, {}),
    "simple_43.txt": (Kind.UNKNOWN, {}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_flufl_samples_are_recognised(name: str) -> None:
    kind, verdicts = SAMPLES[name]
    found = read_inbound((FIXTURES / "flufl" / name).read_bytes())
    assert found.kind is kind
    assert {r.address: r.verdict for r in found.reports} == verdicts


def test_flufl_samples_through_feedpipe_inbound(site: Site) -> None:
    """A real Postfix bounce for a subscriber we mailed (tied by address: no VERP, no Message-ID)
    and a DSN naming the same address hard-bounce it; an unknown sample is kept."""
    fp = site.fp
    sub = fp.subscriptions.add({"email": "xxxxx@local.ie", "status": "active"})
    mail(fp, [sub.id], post_id=3)
    send(fp)
    out = inbound(site, (FIXTURES / "flufl" / "postfix_01.txt").read_bytes())
    assert "xxxxx@local.ie: hard bounce: suppressed (non-standard bounce)" in out
    assert status(site, "xxxxx@local.ie") is SubscriberStatus.BOUNCED
    out = inbound(site, (FIXTURES / "flufl" / "dsn_10.txt").read_bytes())
    assert "a message feedpipe never sent" in out  # its returned Message-ID is not ours
    out = inbound(site, (FIXTURES / "flufl" / "simple_43.txt").read_bytes())
    assert "kept for the operator" in out
