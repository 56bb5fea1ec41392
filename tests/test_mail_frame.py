"""The DATA framing and the `ready` gate before the end of a message's content."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from feedpipe.emails.mime import personalize_template
from feedpipe.emails.render import EmailRenderer
from feedpipe.errors import ValidationError
from feedpipe.mail import Envelope, Outcome, SmtpTransport
from feedpipe.mail.wire import crlf_only, frame
from feedpipe.model import Recipient
from tests.smtp_servers import RecordingHandler, serve
from tests.test_email_support import edition, make_post
from tests.test_mail_smtp import envelopes, make_settings

# bytes made mostly of what framing cares about: CR, LF, dots, and some text
WIRE = st.binary(max_size=200) | st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b".", b"a", b"b c", b"\r\n.", b"\n."]), max_size=60
).map(b"".join)


START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
RENDERED = EmailRenderer(make_settings(25)).render_edition(
    edition([make_post(n, f"Post {n}", ("Rust",)) for n in range(1, 4)])
)


def reference_frame(data: bytes) -> bytes:
    """The plain statement of the rule: CRLF everywhere, a line's leading dot doubled."""
    data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    lines = data[:-2].split(b"\r\n")
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    return b"\r\n".join(stuffed) + b"\r\n.\r\n"


@given(WIRE)
def test_frame_is_the_rule(data: bytes) -> None:
    assert frame(data) == reference_frame(data)


@given(WIRE)
def test_framed_content_ends_only_at_its_terminator(data: bytes) -> None:
    framed = frame(data)
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", framed) is None
    # a server reading lines finds the terminator at the end and only there, and removing
    # one leading dot of each line gives back the content with CRLF line ends
    lines = framed.split(b"\r\n")[:-1]
    assert lines.index(b".") == len(lines) - 1
    content = [line[1:] if line.startswith(b".") else line for line in lines[:-1]]
    normal = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    assert b"\r\n".join(content) + b"\r\n" == normal + (
        b"" if normal.endswith(b"\r\n") else b"\r\n"
    )


def test_ready_is_awaited_before_the_server_can_accept() -> None:
    """The transport asks `ready` for each message after its envelope and content went out
    and before its final dot, which then shares a write with the next envelope; a no drops
    the connection in the middle of DATA: the server has nothing more, the rest is UNSENT."""
    rendered = RENDERED
    handler = RecordingHandler()
    seen: list[tuple[str, int, int]] = []

    async def ready(envelope: Envelope) -> bool:
        seen.append((envelope.recipient, handler.rcpt_calls, len(handler.received)))
        return envelope.recipient != "reader3@example.org"

    async def run(port: int) -> list[Outcome]:
        transport = SmtpTransport.from_settings(make_settings(port, concurrency=1))
        try:
            batch = envelopes(rendered, 4)
            return [d.outcome for d in await transport.send_many(batch, ready=ready)]
        finally:
            await transport.aclose()

    with serve(handler) as server:
        outcomes = asyncio.run(run(server.port))
    assert outcomes == [Outcome.SENT, Outcome.SENT, Outcome.UNSENT, Outcome.UNSENT]
    assert [r.rcpt_tos for r in handler.received] == [
        ("reader1@example.org",),
        ("reader2@example.org",),
    ]
    # asked for message n once its envelope was in (n RCPTs) and n - 1 messages accepted
    assert seen == [(f"reader{n}@example.org", n, n - 1) for n in (1, 2, 3)]


@given(WIRE)
def test_the_crlf_shortcut_changes_nothing_where_it_is_taken(data: bytes) -> None:
    if crlf_only(data):
        assert frame(data, crlf=True) == frame(data)
    else:
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", data)


NAMES = st.none() | st.text(max_size=40)


@settings(max_examples=60, deadline=None)
@given(name=NAMES, given_name=NAMES, first=st.booleans())
def test_personalised_messages_have_crlf_line_ends_only(
    name: str | None, given_name: str | None, first: bool
) -> None:
    """What the dispatcher marks `crlf`: its edition's template has CRLF line ends only, and
    so has every message personalised from it, whatever the names (or it is refused)."""
    template = RENDERED.template
    assert crlf_only(template.data)
    who = Recipient(7, "ada@example.org", name, "https://n.example.com/u/7", "https://n.example/p")
    who = dataclasses.replace(who, given_name=given_name, first=first)
    try:
        data = personalize_template(template, who, "<e1.7@blog.example.com>", START)
    except ValidationError:
        return
    assert crlf_only(data)
