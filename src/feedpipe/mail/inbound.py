"""Read one inbound message (pure): a DSN, a non-standard bounce (flufl.bounce), an ARF
complaint, an auto-reply, a `mailto:` unsubscribe, or something else; and whom it concerns."""

from __future__ import annotations

import email
import enum
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from feedpipe.mail.model import Outcome, Stage
from feedpipe.mail.replies import classify, enhanced_code

MAX_INBOUND = 1 << 20  # bytes read of one message
# Where a bounce or complaint may carry our envelope sender (the VERP token).
ENVELOPE_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "To",
    "Return-Path",
    "X-Original-Return-Path",
)
_SMTP_DIAGNOSTIC = re.compile(r"^\s*smtp\s*;\s*(\d{3})[\s-]+(.*)$", re.I | re.S)
_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|vacation|"
    r"abwesenheit|absence|away from)",
    re.I,
)
_UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe\b", re.I)


class Kind(enum.StrEnum):
    """What an inbound message is."""

    DSN = "dsn"  # RFC 3464 delivery status notification
    BOUNCE = "bounce"  # a non-standard bounce that flufl.bounce recognises
    COMPLAINT = "complaint"  # RFC 5965 ARF feedback report
    AUTO_REPLY = "auto-reply"  # RFC 3834 Auto-Submitted, vacation, out of office
    UNSUBSCRIBE = "unsubscribe"  # a mailto: unsubscribe
    UNKNOWN = "unknown"


class Verdict(enum.StrEnum):
    """What a report says about one recipient."""

    HARD = "hard"  # recipient hard: a bounce
    SOFT = "soft"  # recipient soft: counted toward the soft-bounce limit
    POLICY = "policy"  # a sender or policy failure: nobody is penalised
    COMPLAINT = "complaint"
    NONE = "none"  # delayed, delivered, relayed: nothing to do


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """One recipient of a DSN, a bounce or a complaint."""

    address: str
    verdict: Verdict
    detail: str  # Status and Diagnostic-Code, or what recognised it


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound message, read."""

    key: str  # its Message-ID, else a digest of its bytes (deduplication)
    kind: Kind
    sender: str | None  # the From address
    subject: str
    reports: tuple[RecipientReport, ...] = ()
    envelope: tuple[str, ...] = ()  # addresses that may be our bounce address (VERP)
    original_ids: tuple[str, ...] = ()  # Message-IDs of the message it is about

    @property
    def summary(self) -> str:
        return f"from {self.sender or '?'}: {self.subject[:120] or '(no subject)'}"


def read_inbound(raw: bytes, unsubscribe_mailto: str | None = None) -> Inbound:
    """Read one message; every kind is recognised here, in this order: ARF, DSN, flufl.bounce's
    detectors, auto-reply, `mailto:` unsubscribe (To `unsubscribe_mailto` or Subject
    "unsubscribe"), else unknown."""
    msg = email.message_from_bytes(raw[:MAX_INBOUND], policy=policy.compat32)
    senders = [a for _, a in getaddresses([str(v) for v in msg.get_all("From", [])]) if "@" in a]
    sender = senders[0] if len(senders) == 1 else None
    original = _original(msg)
    kind, reports = _recognise(msg, original, sender, unsubscribe_mailto)
    about = kind in (Kind.DSN, Kind.BOUNCE, Kind.COMPLAINT)
    return Inbound(
        _key(msg, raw),
        kind,
        sender,
        _subject(msg),
        reports,
        _envelope(msg, original) if about else (),
        _original_ids(original) if about else (),
    )


def _recognise(
    msg: Message, original: Message | None, sender: str | None, mailto: str | None
) -> tuple[Kind, tuple[RecipientReport, ...]]:
    report_type = ""
    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type") or "").lower()
    if report_type == "feedback-report":
        return Kind.COMPLAINT, _complaint(msg, original)
    reports = tuple(_dsn(msg)) if report_type == "delivery-status" else ()
    if reports:
        return Kind.DSN, reports
    bounced = _flufl(msg)
    if bounced:
        return Kind.BOUNCE, bounced
    if _auto_reply(msg):
        return Kind.AUTO_REPLY, ()
    if sender and _unsubscribe(msg, mailto):
        return Kind.UNSUBSCRIBE, ()
    return Kind.UNKNOWN, ()


def _subject(msg: Message) -> str:
    from email.header import decode_header, make_header

    value = msg.get("Subject")
    if value is None:
        return ""
    try:
        return _text(str(make_header(decode_header(str(value)))))
    except (ValueError, LookupError):
        return _text(value)


def dsn_verdict(action: str, status: str, diagnostic: str) -> tuple[Verdict, str]:
    """One DSN recipient block through the SMTP reply classifier (`mail.replies.classify`)."""
    action = action.strip().lower()
    detail = " ".join(f"{status} {diagnostic}".split())
    if action != "failed":
        return Verdict.NONE, f"{action or 'no action'}: {detail}"
    found = _SMTP_DIAGNOSTIC.match(diagnostic)
    code, text = (int(found[1]), " ".join(found[2].split())) if found else (0, diagnostic)
    if found:
        detail = f"{code} {text}"
    if enhanced_code(text) is None and status.strip():
        text = f"{status.strip()} {text}"
    if not code:
        code = 550 if status.strip().startswith("5") else 450
    outcome = classify(code, text, Stage.RCPT)
    if outcome is Outcome.FAILED:
        return Verdict.HARD, detail
    if outcome is Outcome.BLOCKED:
        return Verdict.POLICY, detail
    if outcome is Outcome.SENT:
        return Verdict.NONE, detail
    return Verdict.SOFT, detail


def _dsn(msg: Message) -> Iterator[RecipientReport]:
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for block in _status_blocks(part)[1:]:  # the first block is about the message
            address = _address_field(
                block.get("Final-Recipient") or block.get("Original-Recipient")
            )
            if address:
                verdict, detail = dsn_verdict(
                    _text(block.get("Action")),
                    _text(block.get("Status")),
                    _text(block.get("Diagnostic-Code")),
                )
                yield RecipientReport(address, verdict, detail)


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    chunks = re.split(r"\r?\n\s*\r?\n", _decoded(part).strip())
    return [HeaderParser().parsestr(chunk) for chunk in chunks if chunk.strip()]


def _complaint(msg: Message, original: Message | None) -> tuple[RecipientReport, ...]:
    """The complained-about recipient: Original-Rcpt-To, else the original's To (Microsoft's
    sparse reports have neither; then the VERP token or the Message-ID tells)."""
    found: list[str] = []
    feedback = "abuse"
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            for block in _status_blocks(part):
                feedback = _text(block.get("Feedback-Type")) or feedback
                found += [_address_field(v) for v in block.get_all("Original-Rcpt-To", [])]
    if original is not None and not any(found):
        headers = ("X-HmXmrOriginalRecipient", "To")
        found += [a for h in headers for _, a in getaddresses(original.get_all(h, [])) if "@" in a]
    detail = f"feedback report: {feedback}"
    return tuple(RecipientReport(a, Verdict.COMPLAINT, detail) for a in dict.fromkeys(found) if a)


def _flufl(msg: Message) -> tuple[RecipientReport, ...]:
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector that trips over a malformed message: then it is no bounce
        return ()
    hard = [RecipientReport(_decode(a), Verdict.HARD, "non-standard bounce") for a in permanent]
    soft = [
        RecipientReport(_decode(a), Verdict.SOFT, "non-standard bounce (temporary)")
        for a in temporary - permanent
    ]
    return tuple(sorted(hard + soft, key=lambda r: r.address))


def _auto_reply(msg: Message) -> bool:
    submitted = _text(msg.get("Auto-Submitted")).lower()
    if submitted and submitted != "no":
        return True
    flags = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
    if any(msg.get(h) for h in flags[:2]):
        return True
    precedence = _text(msg.get("Precedence")).lower()
    return precedence == "auto_reply" or bool(_AUTO_SUBJECT.match(_text(msg.get("Subject"))))


def _unsubscribe(msg: Message, mailto: str | None) -> bool:
    if _UNSUBSCRIBE_SUBJECT.match(_text(msg.get("Subject"))):
        return True
    if not mailto:
        return False
    target = mailto.removeprefix("mailto:").split("?")[0].lower()
    headers = ("To", "Delivered-To", "X-Original-To", "Cc")
    return any(a.lower() == target for h in headers for _, a in getaddresses(msg.get_all(h, [])))


def _original(msg: Message) -> Message | None:
    """The returned message (or its headers) of a report."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind in ("text/rfc822-headers", "message/rfc822-headers"):
            return HeaderParser().parsestr(_decoded(part))
    return None


def _original_ids(original: Message | None) -> tuple[str, ...]:
    if original is None:
        return ()
    return tuple(i for i in (_text(original.get("Message-ID")),) if i)


def _envelope(msg: Message, original: Message | None) -> tuple[str, ...]:
    found = [
        a
        for m in (msg, original)
        if m is not None
        for h in ENVELOPE_HEADERS
        for _, a in getaddresses([str(v) for v in m.get_all(h, [])])
        if "@" in a
    ]
    return tuple(dict.fromkeys(found))


def _address_field(value: object) -> str:
    """`rfc822; user@example.com` → `user@example.com`."""
    text = _text(value)
    return text.partition(";")[2].strip().strip("<>") if ";" in text else text.strip("<> ")


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _key(msg: Message, raw: bytes) -> str:
    found = _text(msg.get("Message-ID"))
    return found[:500] if found else "sha256:" + hashlib.sha256(raw).hexdigest()


def _text(value: object) -> str:
    return " ".join(str(value).split()) if value is not None else ""


def _decode(address: bytes | str) -> str:
    return address.decode("utf-8", "replace") if isinstance(address, bytes) else address
