"""Hand-made inbound messages (RFC 3464 DSNs, RFC 5965 ARF reports, auto-replies, mailto:
unsubscribes) about messages a test really sent, and a site that sent them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from feedpipe.clock import FixedClock
from feedpipe.mail import MemoryTransport
from feedpipe.model import OutboxFill
from feedpipe.model.hygiene import MessageRef
from feedpipe.outbox.fill import new_messages
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from tests.outbox_helpers import T0, add_subscribers, edition

SECRET = "inbound-test-secret"
BOUNCES = "bounces@blog.example.com"
ENV = {"FEEDPIPE_SECRET_KEY": SECRET}
FIXTURES = Path(__file__).parent / "fixtures" / "inbound"
CRLF = "\r\n"


@dataclass
class Site:
    config: Path
    fp: Feedpipe
    clock: FixedClock
    sent: list[MessageRef]  # one digest sent to each subscriber, in id order


def write_config(root: Path, url: str, **email: str) -> Path:
    (root / "posts").mkdir(exist_ok=True)
    extra = "".join(f'{k} = "{v}"\n' for k, v in email.items())
    config = root / "config.toml"
    config.write_text(
        '[site]\ntitle = "Blog"\nurl = "https://blog.example.com"\n'
        f'[source]\npath = "{root / "posts"}"\n[store]\nurl = "{url}"\n'
        '[web]\nbase_url = "https://news.example.com"\n'
        f'[email]\nfrom_address = "digest@blog.example.com"\nbounce_address = "{BOUNCES}"\n'
        f'unsubscribe_mailto = "unsubscribe@blog.example.com"\noutbox_dir = "{root / "eml"}"\n'
        + extra,
        encoding="utf-8",
    )
    return config


def sent_site(root: Path, url: str, subscribers: int = 4) -> Site:
    """A site whose subscribers user<i>@example.com each got one digest (really sent)."""
    config = write_config(root, url)
    clock = FixedClock(T0)
    fp = Feedpipe.from_settings(load_settings(config, env=ENV), clock)
    ids = add_subscribers(fp.store, subscribers)
    mail(fp, ids)
    send(fp)
    clock.advance(timedelta(hours=1))
    refs = fp.store.message_refs(outbox_ids=list(range(1, 1000)))
    return Site(config, fp, clock, refs)


def mail(fp: Feedpipe, ids: Sequence[int], post_id: int = 1) -> None:
    """Queue an edition for these subscribers, to their own addresses."""
    new = edition(fp.settings, post_id)
    people = fp.subscriptions.links.recipients(fp.store.subscriber_contacts(ids))
    rows = tuple(new_messages(new.key, [people[i] for i in ids], fp.settings.email.from_address))
    fp.store.fill_outbox(lambda: OutboxFill(fp.clock.now(), (new,), rows))


def send(fp: Feedpipe) -> None:
    asyncio.run(fp.outbox.dispatch(transport=MemoryTransport()))


def headers(original: MessageRef, verp: str | None = None) -> str:
    lines = [
        "From: Blog <digest@blog.example.com>",
        f"To: {original.recipient}",
        "Subject: New posts",
        f"Message-ID: {original.message_id}",
    ]
    if verp:
        lines.insert(0, f"Return-Path: <{verp}>")
    return CRLF.join(lines) + CRLF


def dsn(
    to: str,
    recipients: Sequence[tuple[str, str, str, str]],  # (address, action, status, diagnostic)
    original: str,  # the returned headers
    message_id: str = "<dsn-1@mx.example.net>",
) -> bytes:
    """An RFC 3464 DSN as Postfix writes one, to `to` (our bounce address)."""
    blocks = CRLF.join(
        f"Final-Recipient: rfc822; {a}{CRLF}Original-Recipient: rfc822;{a}{CRLF}"
        f"Action: {action}{CRLF}Status: {status}{CRLF}"
        + (f"Diagnostic-Code: smtp; {diag}{CRLF}" if diag else "")
        for a, action, status, diag in recipients
    )
    return (
        f"Return-Path: <>{CRLF}Delivered-To: {to}{CRLF}"
        f"From: MAILER-DAEMON@mx.example.net (Mail Delivery System){CRLF}To: {to}{CRLF}"
        f"Subject: Undelivered Mail Returned to Sender{CRLF}Message-ID: {message_id}{CRLF}"
        f"Auto-Submitted: auto-replied{CRLF}MIME-Version: 1.0{CRLF}"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="B"{CRLF}{CRLF}'
        f"--B{CRLF}Content-Type: text/plain{CRLF}{CRLF}I'm sorry to have to inform you...{CRLF}"
        f"--B{CRLF}Content-Type: message/delivery-status{CRLF}{CRLF}"
        f"Reporting-MTA: dns; mx.example.net{CRLF}Arrival-Date: Sun, 1 Mar 2026 09:00:00 +0000"
        f"{CRLF}{CRLF}{blocks}{CRLF}"
        f"--B{CRLF}Content-Type: text/rfc822-headers{CRLF}{CRLF}{original}{CRLF}--B--{CRLF}"
    ).encode()


def arf(
    original: str,
    rcpt_to: str | None,
    message_id: str = "<arf-1@fbl.example.net>",
    sparse: bool = False,
) -> bytes:
    """An RFC 5965 feedback report (Yahoo-style); `sparse`: Microsoft's, which names nobody
    (no Original-Rcpt-To, the original's To redacted)."""
    if sparse:
        report = f"Feedback-Type: abuse{CRLF}User-Agent: Microsoft JMRP/1.0{CRLF}Version: 1.0{CRLF}"
        original = "".join(
            "To: <redacted>" + CRLF if line.startswith("To:") else line + CRLF
            for line in original.split(CRLF)
            if line
        )
    else:
        report = (
            f"Feedback-Type: abuse{CRLF}User-Agent: YahooMailFBL/1.0{CRLF}Version: 1{CRLF}"
            f"Original-Mail-From: <{BOUNCES}>{CRLF}Original-Rcpt-To: <{rcpt_to}>{CRLF}"
            f"Arrival-Date: Sun, 1 Mar 2026 09:00:00 +0000{CRLF}"
        )
    return (
        f"From: {'staff@hotmail.com' if sparse else 'feedback@arf.mail.yahoo.com'}{CRLF}"
        f"To: fbl@blog.example.com{CRLF}Subject: Complaint about your message{CRLF}"
        f"Message-ID: {message_id}{CRLF}MIME-Version: 1.0{CRLF}"
        f'Content-Type: multipart/report; report-type=feedback-report; boundary="F"{CRLF}{CRLF}'
        f"--F{CRLF}Content-Type: text/plain{CRLF}{CRLF}This is an email abuse report.{CRLF}"
        f"--F{CRLF}Content-Type: message/feedback-report{CRLF}{CRLF}{report}{CRLF}"
        f"--F{CRLF}Content-Type: message/rfc822{CRLF}{CRLF}{original}{CRLF}Body{CRLF}--F--{CRLF}"
    ).encode()


def simple(from_: str, to: str, subject: str, message_id: str, *extra: str) -> bytes:
    head = [f"From: {from_}", f"To: {to}", f"Subject: {subject}", f"Message-ID: {message_id}"]
    return (CRLF.join([*head, *extra]) + CRLF + CRLF + "Hello." + CRLF).encode()
