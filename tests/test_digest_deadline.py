"""Deadlines: a digest still queued at its deadline (worker down, sending paused) is cancelled
and its posts go in the subscriber's next digest: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest

from feedpipe.clock import FixedClock
from feedpipe.mail import MemoryTransport, Outcome
from feedpipe.model import NewMessage, OutboxFill, OutboxState
from feedpipe.outbox.dispatch import Dispatcher, DispatchOptions
from feedpipe.outbox.policy import message_id
from feedpipe.service import Feedpipe
from feedpipe.settings import settings_from_mapping
from feedpipe.store import Store
from tests.outbox_helpers import SENDER, T0, add_subscribers, edition, recipient
from tests.outbox_helpers import settings as make_settings

DAY = timedelta(days=1)


def queue_late(store: Store, post_id: int, sub_id: int, since: datetime, deadline: datetime) -> str:
    new = edition(make_settings(Path("/nonexistent"), "sqlite://"), post_id)
    row = NewMessage(
        new.key, recipient(sub_id), message_id(new.key, sub_id, SENDER), since=since,
        deadline=deadline,
    )  # fmt: skip
    store.fill_outbox(lambda: OutboxFill(T0, (new,), (row,)))
    return new.key


def states(store: Store, sub_id: int) -> list[OutboxState]:
    return [state for _, state, _, _ in store.outbox_messages(sub_id)]


def send_all(
    store: Store, now: datetime, script: Mapping[str, Iterable[Outcome]] | None = None
) -> tuple[MemoryTransport, int]:
    transport = MemoryTransport(script)
    opts = DispatchOptions(sender=SENDER)
    dispatcher = Dispatcher(store, transport, FixedClock(now), opts, random.Random(7), owner="t")
    report = asyncio.run(dispatcher.run())
    return transport, report.expired


def test_late_rows_are_cancelled_and_the_watermark_rolls_back(store: Store) -> None:
    (sub,) = add_subscribers(store, 1)
    store.advance_watermarks({sub: T0 + 2 * DAY})  # what the two fills did
    queue_late(store, 1, sub, since=T0, deadline=T0 + timedelta(hours=6))
    queue_late(store, 2, sub, since=T0 + DAY, deadline=T0 + DAY + timedelta(hours=6))
    assert store.expire_outbox(T0 + timedelta(hours=5)) == 0  # not late yet
    assert store.expire_outbox(T0 + timedelta(hours=7)) == 2  # the late one and every later one
    assert states(store, sub) == [OutboxState.CANCELLED, OutboxState.CANCELLED]
    found = store.subscriber_by_id(sub)
    assert found is not None and found.watermark == T0  # both digests' posts are new again
    assert store.expire_outbox(T0 + 3 * DAY) == 0  # once


def test_a_late_row_with_a_later_one_already_sent_goes_anyway(store: Store) -> None:
    """Rolling back past a sent digest would send its posts twice: the late one is sent late."""
    (sub,) = add_subscribers(store, 1)
    store.advance_watermarks({sub: T0 + 2 * DAY})
    queue_late(store, 1, sub, since=T0, deadline=T0 + timedelta(hours=6))
    queue_late(store, 2, sub, since=T0 + DAY, deadline=T0 + 3 * DAY)
    transport, _ = send_all(store, T0, {recipient(sub).email: [Outcome.SOFT]})
    assert states(store, sub) == [OutboxState.RETRY, OutboxState.SENT]
    assert store.expire_outbox(T0 + DAY) == 0
    found = store.subscriber_by_id(sub)
    assert found is not None and found.watermark == T0 + 2 * DAY
    transport, _ = send_all(store, T0 + DAY)
    assert len(transport.sent) == 1  # late, but not lost


def test_a_cancelled_late_row_planned_again_is_queued_again(store: Store) -> None:
    (sub,) = add_subscribers(store, 1)
    queue_late(store, 1, sub, since=T0, deadline=T0 + timedelta(hours=6))
    assert store.expire_outbox(T0 + DAY) == 1
    queue_late(store, 1, sub, since=T0, deadline=T0 + DAY + timedelta(hours=6))  # same posts
    assert states(store, sub) == [OutboxState.QUEUED]
    transport, _ = send_all(store, T0 + DAY)
    assert len(transport.sent) == 1


# --- through the service: fill, a worker that is down, the next digest -------------------------


def write_post(folder: Path, slug: str, date: str) -> None:
    text = f'---\ntitle: "{slug}"\nslug: {slug}\ndate: {date}\n---\nBody of {slug}.\n'
    (folder / f"{slug}.md").write_text(text, encoding="utf-8")


@pytest.fixture
def site(store_url: str, tmp_path: Path) -> Iterator[tuple[Feedpipe, FixedClock, Path]]:
    posts = tmp_path / "posts"
    posts.mkdir()
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(posts)},
        "store": {"url": store_url},
        "digest": {"timezone": "Europe/Berlin", "send_time": "08:00"},
        "web": {"base_url": "https://news.example.com"},
    }
    clock = FixedClock(datetime(2026, 3, 1, tzinfo=UTC))
    with Feedpipe.from_settings(settings_from_mapping(data, tmp_path, "t", {}), clock) as fp:
        for who in ("ann", "bob"):
            fp.subscriptions.add({"email": f"{who}@example.com", "status": "active"})
        yield fp, clock, posts


def slugs(message: Message) -> list[str]:
    html = next(p for p in message.walk() if p.get_content_type() == "text/html")
    payload = html.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return sorted(s for s in ("first", "second") if f"/{s}/" in payload.decode())


def test_a_digest_queued_while_the_worker_is_down_merges_into_the_next(
    site: tuple[Feedpipe, FixedClock, Path],
) -> None:
    fp, clock, posts = site
    write_post(posts, "first", "2026-03-01T09:00:00Z")
    clock.set(datetime(2026, 3, 1, 10, tzinfo=UTC))
    fp.sync()
    slot = datetime(2026, 3, 2, 7, tzinfo=UTC)  # 08:00 in Berlin
    assert fp.outbox.fill(slot).queued == 2  # planned ... then the sender stops until 15:00
    write_post(posts, "second", "2026-03-02T12:00:00Z")
    clock.set(datetime(2026, 3, 2, 12, 30, tzinfo=UTC))
    fp.sync()
    restart = datetime(2026, 3, 2, 15, tzinfo=UTC)  # 16:00 local: too late for a morning digest
    transport, expired = send_all(fp.store, restart)
    assert (expired, transport.sent) == (2, [])
    report = fp.outbox.fill(restart)
    assert (report.queued, report.expired) == (0, 0)  # not at 16:00 local
    nxt = slot + DAY
    assert fp.outbox.fill(nxt).queued == 2
    transport, _ = send_all(fp.store, nxt)
    got = {e.recipient: slugs(message_from_bytes(e.data)) for e in transport.sent}
    assert got == {"ann@example.com": ["first", "second"], "bob@example.com": ["first", "second"]}
    assert fp.outbox.fill(nxt + DAY).queued == 0  # nothing twice
