"""The reply classifier: the table of docs/delivery.md, and properties over every reply."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedpipe.mail import Outcome, Stage, classify, enhanced_code, fix_for

F, S, T, B, R = Outcome.FAILED, Outcome.SOFT, Outcome.THROTTLED, Outcome.BLOCKED, Outcome.RETRY
RCPT, MAIL, FINAL = Stage.RCPT, Stage.MAIL, Stage.FINAL

# (code, text, stage, outcome): real replies of Postfix, Exim, Gmail, Microsoft 365, Yahoo.
TABLE = [
    (250, "2.0.0 Ok: queued as 4Z1", FINAL, Outcome.SENT),
    # recipient hard
    (550, "5.1.1 <a@x.org>: Recipient address rejected: User unknown in local recipient table",
     RCPT, F),
    (550, "5.1.2 Host unknown: bad destination system", RCPT, F),
    (556, "5.1.10 Recipient address has null MX", RCPT, F),
    (550, "5.2.1 The email account that you tried to reach is disabled.", RCPT, F),
    (550, "5.4.1 Recipient address rejected: Access denied. AS(201806281)", RCPT, F),
    (550, "Requested action not taken: mailbox unavailable", RCPT, F),  # RFC 5321 550
    (550, "No such user here", FINAL, F),
    # recipient soft
    (452, "4.2.2 The email account that you tried to reach is over quota.", RCPT, S),
    (552, "5.2.2 The email account that you tried to reach is over quota.", RCPT, S),
    (552, "Mailbox full", RCPT, S),
    (450, "4.2.0 <a@x.org>: Recipient address rejected: Greylisted", RCPT, S),
    (451, "4.7.1 Please try again later", RCPT, S),  # greylisting
    (451, "4.4.1 No answer from host", FINAL, S),
    (450, "Requested mail action not taken: mailbox busy", RCPT, S),
    # throttled
    (421, "4.7.0 Try again later, closing connection. (EHLO)", RCPT, T),
    (421, "Service not available", MAIL, T),
    (451, "4.7.0 Rate limit exceeded, try again later", FINAL, T),
    (452, "4.3.1 Insufficient system storage", RCPT, T),
    (452, "4.5.3 Too many recipients", RCPT, T),
    (454, "4.7.0 TLS not available due to local problem", MAIL, T),
    (421, "4.7.28 Gmail has detected an unusual rate of unsolicited mail", FINAL, T),
    # sender or policy
    (550, "5.7.1 <digest@blog.example.com>: Sender address rejected: Access denied", RCPT, B),
    (553, "5.7.1 <digest@blog.example.com>: Sender address rejected: not owned by user",
     RCPT, B),
    (454, "4.7.1 <a@x.org>: Relay access denied", RCPT, B),
    (554, "5.7.1 <a@x.org>: Relay access denied", RCPT, B),
    (504, "5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname", RCPT, B),
    (530, "5.7.0 Must issue a STARTTLS command first", MAIL, B),
    (530, "5.7.0 Authentication required", MAIL, B),
    (535, "5.7.8 Error: authentication failed: authentication failure", MAIL, B),
    (552, "5.3.4 Message size exceeds fixed limit", FINAL, B),
    (552, "Message size exceeds maximum permitted", FINAL, B),
    (554, "5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
     RCPT, B),
    (550, "5.7.26 This mail is unauthenticated, which poses a security risk (DMARC)", FINAL, B),
    (550, "5.7.25 The IP address sending this message does not have a PTR record", FINAL, B),
    (550, "5.7.606 Access denied, banned sending IP [192.0.2.1]", RCPT, B),
    (554, "5.6.0 Message content rejected", FINAL, B),
    (553, "5.1.8 <digest@nowhere.invalid>: Sender address rejected: Domain not found", RCPT, B),
    (550, "5.1.1 Sender verify failed", MAIL, B),  # whatever a MAIL refusal says: the sender
    (554, "Transaction failed: spam message rejected", FINAL, B),
    (550, "Sender rejected", RCPT, B),
    (500, "Syntax error, command unrecognized", RCPT, B),
    # unknown: retried a bounded number of times, never a bounce
    (554, "Transaction failed", FINAL, R),
    (554, "5.0.0 Error", FINAL, R),
    (451, "Requested action aborted: local error in processing", FINAL, R),
    (441, "4.4.0 Something", FINAL, S),
]  # fmt: skip


@pytest.mark.parametrize(("code", "text", "stage", "outcome"), TABLE)
def test_the_table(code: int, text: str, stage: Stage, outcome: Outcome) -> None:
    assert classify(code, text, stage) is outcome


def test_enhanced_code_is_read_from_the_start_of_the_text() -> None:
    assert enhanced_code("5.1.10 null MX") == (5, 1, 10)
    assert enhanced_code("  4.7.1 greylisted") == (4, 7, 1)
    assert enhanced_code("mailbox 5.1.1 unavailable") is None
    assert enhanced_code("5.1 short") is None


codes = st.integers(min_value=200, max_value=599)
texts = st.text(max_size=80)
stages = st.sampled_from(list(Stage))


@given(codes, texts, stages)
def test_only_a_permanent_reply_after_the_sender_was_accepted_can_bounce(
    code: int, text: str, stage: Stage
) -> None:
    outcome = classify(code, text, stage)
    if outcome is Outcome.FAILED:
        assert code >= 500 and stage is not Stage.MAIL
    if 200 <= code < 300:
        assert outcome is Outcome.SENT


@given(st.integers(500, 599), st.integers(0, 999), texts, stages)
def test_security_and_protocol_codes_never_bounce_anyone(
    code: int, detail: int, tail: str, stage: Stage
) -> None:
    for subject in (3, 5, 6, 7):
        assert classify(code, f"5.{subject}.{detail} {tail}", stage) is not Outcome.FAILED


@given(st.sampled_from(["Sender address rejected", "Relay access denied", "Helo command "
                        "rejected", "SPF check failed", "DKIM signature invalid",
                        "blocked using bl.spamcop.net", "Authentication required"]),
       st.sampled_from([550, 551, 553, 554]), stages)  # fmt: skip
def test_sender_problems_without_enhanced_code_never_bounce(
    text: str, code: int, stage: Stage
) -> None:
    assert classify(code, text, stage) is Outcome.BLOCKED


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        ("504 5.5.2 <localhost>: Helo command rejected", "helo_name"),
        ("530 5.7.0 Must issue a STARTTLS command first", "security"),
        ("535 5.7.8 authentication failed", "FEEDPIPE_SMTP_PASSWORD"),
        ("552 5.3.4 Message size exceeds fixed limit", "max_bytes"),
        ("550 5.7.1 Sender address rejected: Access denied", "from_address"),
        ("554 5.7.1 Client host blocked using zen.spamhaus.org", "blocklists"),
        ("550 5.7.26 unauthenticated (DMARC)", "DKIM"),
    ],
)
def test_what_to_fix_names_the_setting(reply: str, words: str) -> None:
    assert words in fix_for(reply)
