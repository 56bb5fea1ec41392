"""Retracted posts leave queued digests: re-rendered without them, or cancelled when empty."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest

from feedpipe.clock import FixedClock
from feedpipe.mail.memory import MemoryTransport
from feedpipe.model import OutboxState
from feedpipe.service import Feedpipe
from tests.test_outbox_fill import DUE, small_site, write_post


@pytest.fixture
def fp(store_url: str, tmp_path: Path) -> Iterator[Feedpipe]:
    """s0, s1 read Rust, s2 Python, s3 everything; two new posts, one digest each queued."""
    with small_site(store_url, tmp_path, {"outbox_dir": str(tmp_path / "eml")}) as site:
        assert isinstance(site.clock, FixedClock)
        site.clock.set(DUE)
        assert site.outbox.fill(DUE).queued == 4
        yield site


def _send(fp: Feedpipe) -> dict[str, list[str]]:
    """Dispatch everything due; subject and text of each message by recipient."""
    transport = MemoryTransport()
    asyncio.run(fp.outbox.dispatch(transport))
    got: dict[str, list[str]] = {}
    for envelope in transport.sent:
        msg = email.message_from_bytes(envelope.data, policy=policy.default)
        body = msg.get_body(("plain",))
        assert body is not None
        got.setdefault(envelope.recipient, []).append(body.get_content())
    return got


@pytest.mark.parametrize("how", ["file removed", "made a draft"])
def test_a_retracted_post_leaves_every_queued_digest_and_empty_ones_are_cancelled(
    fp: Feedpipe, tmp_path: Path, how: str
) -> None:
    gone = tmp_path / "posts" / "new-rust.md"
    if how == "file removed":
        gone.unlink()
    else:
        gone.write_text(gone.read_text("utf-8").replace("---\n", "---\ndraft: true\n", 1))
    watermarks = {s.id: s.watermark for s in fp.store.subscribers()}
    fp.sync()  # the sync notices the retraction and fixes the queue
    counts = fp.outbox.counts()
    assert (counts[OutboxState.QUEUED], counts[OutboxState.CANCELLED]) == (2, 2)
    got = _send(fp)
    assert sorted(got) == ["s2@example.com", "s3@example.com"]  # the Rust-only ones: none
    for texts in got.values():
        [text] = texts
        assert "new-python" in text and "new-rust" not in text
    # nothing planned again, nothing lost: the watermarks stayed, a new fill queues nothing
    assert {s.id: s.watermark for s in fp.store.subscribers()} == watermarks
    assert fp.outbox.fill(DUE + timedelta(minutes=5)).queued == 0
    assert _send(fp) == {}


def test_a_sync_without_retractions_leaves_the_queue_as_filled(
    fp: Feedpipe, tmp_path: Path
) -> None:
    before = {s.id: fp.store.outbox_messages(s.id) for s in fp.store.subscribers()}
    write_post(tmp_path / "posts", "another", '["Rust"]')
    fp.sync()
    report = fp.outbox.drop_retracted()
    assert (report.rerendered, report.cancelled, report.editions) == (0, 0, 0)
    assert {s.id: fp.store.outbox_messages(s.id) for s in fp.store.subscribers()} == before


def test_a_claimed_digest_is_left_alone(fp: Feedpipe, tmp_path: Path) -> None:
    claim = fp.store.claim_outbox("elsewhere", DUE, timedelta(minutes=10), 100)
    assert len(claim.messages) == 4
    (tmp_path / "posts" / "new-rust.md").unlink()
    fp.sync()
    report = fp.outbox.drop_retracted()
    assert (report.rerendered, report.cancelled) == (0, 0)
    assert fp.outbox.counts()[OutboxState.QUEUED] == 4  # leased, not yet taken: untouched
