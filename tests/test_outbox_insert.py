"""Outbox rows in bulk without foreign keys: the upsert's rule, removals racing a fill, orphans."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.model import NewMessage, OutboxFill, OutboxState, Subscriber
from feedpipe.store import Store
from tests.outbox_helpers import T0, add_subscribers, edition, recipient
from tests.outbox_helpers import settings as make_settings

PAIR = st.tuples(st.integers(0, 3), st.integers(0, 1))  # (subscriber, edition) by index


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    present=st.sets(PAIR, max_size=8),
    cancelled=st.sets(st.integers(0, 3), max_size=4),
    batch=st.lists(PAIR, max_size=12),
)
def test_a_fill_inserts_new_pairs_queues_cancelled_ones_again_and_keeps_the_rest(
    store: Store,
    tmp_path: Path,
    present: set[tuple[int, int]],
    cancelled: set[int],
    batch: list[tuple[int, int]],
) -> None:
    """Whatever is present (queued or cancelled rows) and whatever the batch repeats, the bulk
    path (PostgreSQL: COPY straight into the outbox, else the staged upsert) leaves the rows
    and count the upsert's rule gives."""
    subs = add_subscribers(store, 4, start=len(store.subscribers()))
    config = make_settings(tmp_path, "sqlite://")
    editions = [edition(config, 1), edition(config, 2)]

    def fill(pairs: Sequence[tuple[int, int]]) -> int:
        messages = tuple(
            NewMessage(editions[e].key, recipient(subs[s]), f"<{subs[s]}.{e}@x>") for s, e in pairs
        )
        return store.fill_outbox(lambda: OutboxFill(T0, tuple(editions), messages))[2]

    assert fill(sorted(present)) == len(present)
    for s in cancelled:
        store.cancel_outbox(subs[s], T0)
    stopped = {p for p in present if p[0] in cancelled}
    assert fill(batch) == len(set(batch) - (present - stopped))
    expected = dict.fromkeys(present | set(batch), OutboxState.QUEUED)
    expected |= dict.fromkeys(stopped - set(batch), OutboxState.CANCELLED)
    keys = {e.key: n for n, e in enumerate(editions)}
    found = {
        (s, keys[key]): state
        for s, sub_id in enumerate(subs)
        for key, state, _, _ in store.outbox_messages(sub_id)
    }
    assert found == expected


def test_a_removal_waits_for_the_fill_page_in_progress_and_takes_its_rows(
    store: Store, tmp_path: Path
) -> None:
    """The outbox has no foreign key: a subscriber removed while a fill page that read them is
    writing their digest waits for that page (the fill lock) and then deletes its row."""
    subs = add_subscribers(store, 2)
    new = edition(make_settings(tmp_path, "sqlite://"))
    remover = threading.Thread(target=store.remove_subscriber, args=(subs[0],))
    waited: list[bool] = []

    def make(page: Sequence[Subscriber], suppressed: frozenset[int]) -> OutboxFill:
        remover.start()
        remover.join(timeout=0.5)
        waited.append(remover.is_alive())  # blocked behind this page's lock
        messages = tuple(NewMessage(new.key, recipient(s.id), f"<{s.id}@x>") for s in page)
        return OutboxFill(T0, (new,), messages)

    assert store.fill_outbox_page(0, 10, make) is not None
    remover.join()
    assert waited == [True]
    assert [s.id for s in store.subscribers()] == subs[1:]
    assert store.outbox_messages(subs[0]) == []
    assert [m[1] for m in store.outbox_messages(subs[1])] == [OutboxState.QUEUED]


def test_a_row_without_its_subscriber_is_never_claimed(store: Store, tmp_path: Path) -> None:
    """The claim joins each row to its subscriber: a row naming no subscriber (which nothing
    writes, the outbox having no foreign key) would never be sent."""
    (sub,) = add_subscribers(store, 1)
    new = edition(make_settings(tmp_path, "sqlite://"))
    rows = tuple(NewMessage(new.key, recipient(i), f"<{i}@x>") for i in (sub, sub + 1000))
    assert store.fill_outbox(lambda: OutboxFill(T0, (new,), rows))[2] == 2
    claim = store.claim_outbox("w", T0, timedelta(minutes=1), 10)
    assert [m.recipient.subscriber_id for m in claim.messages] == [sub]
