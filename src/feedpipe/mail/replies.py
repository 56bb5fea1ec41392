"""Classify an SMTP reply (RFC 3463 enhanced code, then basic code, then well-known texts)."""

from __future__ import annotations

import re

from feedpipe.mail.model import Outcome, Stage

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
HARD_CODES = frozenset({550, 551, 553})  # RFC 5321: mailbox unavailable / not local / bad name

# Enhanced codes, permanent (5.x.y): (subject, detail) first, then the subject alone.
# Absent: ambiguous (x.0.0, 5.2.0 …): the basic code and the text decide.
_PERMANENT_DETAIL: dict[tuple[int, int], Outcome] = {
    (1, 1): Outcome.FAILED,  # bad destination mailbox
    (1, 2): Outcome.FAILED,  # bad destination system (no such domain)
    (1, 3): Outcome.FAILED,  # bad destination mailbox syntax
    (1, 4): Outcome.FAILED,  # ambiguous destination mailbox
    (1, 6): Outcome.FAILED,  # mailbox has moved
    (1, 10): Outcome.FAILED,  # recipient domain has a null MX (RFC 7505)
    (1, 7): Outcome.BLOCKED,  # bad sender mailbox syntax
    (1, 8): Outcome.BLOCKED,  # bad sender system address
    (2, 1): Outcome.FAILED,  # mailbox disabled
    (2, 2): Outcome.SOFT,  # mailbox full
    (2, 3): Outcome.BLOCKED,  # message longer than the administrative limit
    (4, 1): Outcome.FAILED,  # no answer from host (Microsoft 365: recipient does not exist)
    (4, 4): Outcome.FAILED,  # unable to route
}
_PERMANENT_SUBJECT: dict[int, Outcome] = {
    3: Outcome.BLOCKED,  # mail system: too big (5.3.4), not accepting (5.3.2) …
    5: Outcome.BLOCKED,  # protocol: HELO/EHLO, syntax, too many recipients
    6: Outcome.BLOCKED,  # message content or media
    7: Outcome.BLOCKED,  # security or policy: auth, TLS, SPF/DKIM/DMARC, blocked sender or IP
}
# Transient (4.x.y).
_TRANSIENT_DETAIL: dict[tuple[int, int], Outcome] = {
    (1, 7): Outcome.BLOCKED,
    (1, 8): Outcome.BLOCKED,
    (5, 3): Outcome.THROTTLED,  # too many recipients
    (7, 1): Outcome.SOFT,  # greylisting ("try again later"); "relay access denied" by its text
}
_TRANSIENT_SUBJECT: dict[int, Outcome] = {
    1: Outcome.SOFT,  # address status, temporarily
    2: Outcome.SOFT,  # mailbox full or busy
    3: Outcome.THROTTLED,  # mail system: storage, not accepting now
    4: Outcome.SOFT,  # network and routing
    7: Outcome.THROTTLED,  # policy: rate limits (4.7.0, Gmail's 4.7.28 …)
}
# Basic codes that mean one thing whatever the text says.
_BASIC: dict[int, Outcome] = {
    421: Outcome.THROTTLED,  # service not available, closing the connection
    450: Outcome.SOFT,  # mailbox unavailable (busy)
    452: Outcome.THROTTLED,  # insufficient storage / too many recipients
    454: Outcome.THROTTLED,  # TLS temporarily unavailable
    500: Outcome.BLOCKED,  # syntax error: a protocol problem on our side
    501: Outcome.BLOCKED,
    502: Outcome.BLOCKED,
    503: Outcome.BLOCKED,
    504: Outcome.BLOCKED,  # e.g. a HELO name refused
    530: Outcome.BLOCKED,  # authentication or STARTTLS required
    534: Outcome.BLOCKED,  # authentication mechanism too weak
    535: Outcome.BLOCKED,  # authentication failed
    538: Outcome.BLOCKED,  # encryption required for the mechanism
    552: Outcome.BLOCKED,  # exceeded storage allocation: too big (a quota by its text)
}
# Well-known texts, sender problems checked first (a sender mistake must never bounce anyone).
_TEXTS: tuple[tuple[Outcome, re.Pattern[str]], ...] = (
    (
        Outcome.BLOCKED,
        re.compile(
            r"relay(ing)? (access )?(denied|not permitted)|(unable|not (allowed|permitted)) to "
            r"relay|sender (address )?(rejected|denied|refused|blocked|not)|\bhelo\b|\behlo\b|"
            r"\bspf\b|dkim|dmarc|authenticat|starttls|\btls\b|blocked|(black|block|deny) ?list|"
            r"spamhaus|spamcop|spam|reputation|policy|too (big|large)|message size|size limit",
            re.I,
        ),
    ),
    (Outcome.SOFT, re.compile(r"gr[ae]y ?list|mailbox (is )?full|quota|insufficient", re.I)),
    (
        Outcome.FAILED,
        re.compile(
            r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|"
            r"doesn't exist|invalid (recipient|mailbox)|mailbox not found|account (has been )?"
            r"disabled|unrouteable|recipient (address )?rejected",
            re.I,
        ),
    ),
)


def enhanced_code(text: str) -> tuple[int, int, int] | None:
    """The RFC 3463 enhanced status code a reply's text starts with (per line), if any."""
    match = _ENHANCED.match(text)
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


def classify(code: int, text: str, stage: Stage) -> Outcome:
    """What one server reply means for the message, its recipient and the sender.

    SENT (2xx); FAILED: recipient hard (a bounce); SOFT: recipient soft (retried, counted);
    THROTTLED: slow down (retried, not counted); BLOCKED: a sender or policy problem (nobody
    penalised, kept, the breaker counts it); RETRY: unknown (retried a bounded number of times,
    then failed without a bounce). The table is in docs/delivery.md.
    """
    if 200 <= code < 300:
        return Outcome.SENT
    if code == 421:
        return Outcome.THROTTLED
    if stage is Stage.MAIL and code >= 500:
        return Outcome.BLOCKED  # the server refused our envelope sender
    return (
        _by_enhanced(code, text)
        or _by_basic(code, text)
        or _by_text(text)
        or (Outcome.FAILED if code in HARD_CODES else Outcome.RETRY)
    )


def _by_enhanced(code: int, text: str) -> Outcome | None:
    found = enhanced_code(text)
    if found is None:
        return None
    _, subject, detail = found
    if code >= 500:
        return _PERMANENT_DETAIL.get((subject, detail)) or _PERMANENT_SUBJECT.get(subject)
    outcome = _TRANSIENT_DETAIL.get((subject, detail)) or _TRANSIENT_SUBJECT.get(subject)
    if outcome is Outcome.SOFT and (subject, detail) == (7, 1) and _sender_text(text):
        return Outcome.BLOCKED  # Postfix: "454 4.7.1 Relay access denied"
    return outcome


def _by_basic(code: int, text: str) -> Outcome | None:
    if code == 552 and _quota(text):
        return Outcome.SOFT  # "552 mailbox full": storage of this recipient
    return _BASIC.get(code)


def _by_text(text: str) -> Outcome | None:
    return next((outcome for outcome, pattern in _TEXTS if pattern.search(text)), None)


def _sender_text(text: str) -> bool:
    return _TEXTS[0][1].search(text) is not None


def _quota(text: str) -> bool:
    return _TEXTS[1][1].search(text) is not None and not _sender_text(text)


# What to fix, by the first matching pattern of the reply (for `sending paused: …`).
_FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^complaint rate"),
        "recipients report the digests as spam: check who is on the list (double opt-in, "
        "suppressions) and that unsubscribing is easy, then `feedpipe outbox resume`",
    ),
    (
        re.compile(r"\bhelo\b|\behlo\b|5\.5\.2", re.I),
        "the server refuses our HELO name: set [email.smtp] helo_name to a fully-qualified "
        "name that resolves to this host",
    ),
    (
        re.compile(r"starttls|\btls\b|5\.7\.11|^538", re.I),
        'the server requires TLS: set [email.smtp] security = "starttls" (or "tls" on 465)',
    ),
    (
        re.compile(r"spf|dkim|dmarc|5\.7\.2[3-9]", re.I),
        "receivers reject the sender's authentication: publish SPF and DKIM for the "
        "from_address domain and check [email] dkim_*",
    ),
    (
        re.compile(r"authenticat|^53[05]|5\.7\.[08]\b|5\.7\.9\b", re.I),
        "the server wants authentication: check [email.smtp] username, "
        "$FEEDPIPE_SMTP_PASSWORD and security",
    ),
    (
        re.compile(r"too (big|large)|size|5\.3\.4|5\.2\.3|^552", re.I),
        "messages are larger than the server accepts: lower [digest] max_bytes",
    ),
    (
        re.compile(r"relay|sender", re.I),
        "the server does not accept mail from [email] from_address from this host: allow "
        "it to relay for us, or use an address it accepts",
    ),
    (
        re.compile(r"block|black ?list|spamhaus|reputation|spam", re.I),
        "the sender or this host's IP is blocked: check the blocklists and the provider's "
        "postmaster pages",
    ),
)


def fix_for(reply: str) -> str:
    """A one-line hint at what to fix for a sender or policy reply."""
    return next(
        (fix for pattern, fix in _FIXES if pattern.search(reply)),
        "fix the sender setup the reply names",
    )
