"""A fill page by page: the same rows as one page, crash-safe per page, keyset pages, bulk rows."""

from __future__ import annotations

import gc
import json
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedpipe.digests.model import PlannedEdition
from feedpipe.emails.render import EmailRenderer
from feedpipe.model import (
    Action,
    Contact,
    Frequency,
    NewEdition,
    NewMessage,
    OutboxFill,
    OutboxState,
    Preferences,
    Recipient,
    Schedule,
    SubscriberStatus,
)
from feedpipe.outbox import fill as fill_module
from feedpipe.outbox.fill import FILL_PAGE
from feedpipe.outbox.policy import message_id
from feedpipe.store import Store
from feedpipe.store.outbox_insert import personalisation
from feedpipe.subscriptions.tokens import TokenPurpose
from tests.outbox_helpers import T0, add_subscribers, edition, recipient
from tests.outbox_helpers import settings as make_settings
from tests.test_outbox_fill import DUE, small_site


def test_a_fill_in_pages_writes_what_the_plan_says(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    original = fill_module.new_edition

    def counting(renderer: EmailRenderer, planned: PlannedEdition, now: datetime) -> NewEdition:
        renders.append(planned.key)
        return original(renderer, planned, now)

    monkeypatch.setattr(fill_module, "FILL_PAGE", 1)
    monkeypatch.setattr(fill_module, "new_edition", counting)
    with small_site(store_url, tmp_path) as fp:
        planned = fp.digests.plan(DUE, fp.outbox.renderer.fingerprint())
        expected = {i: e.key for e in planned.editions for i in e.subscriber_ids}
        report = fp.outbox.fill(DUE)
        sender = fp.settings.email.from_address
        for sub in fp.store.subscribers():
            key = expected[sub.id]
            queued = (key, OutboxState.QUEUED, 0, message_id(key, sub.id, sender))
            assert fp.store.outbox_messages(sub.id) == [queued]
            assert sub.watermark == DUE
        assert fp.outbox.fill(DUE + timedelta(minutes=1)).queued == 0
    assert (report.due, report.editions, report.queued) == (4, 3, 4)
    assert len(renders) == len(set(renders)) == 3  # each edition once, across the pages


def test_a_crash_in_a_later_page_keeps_the_pages_before_it(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = fill_module.new_messages

    def crash_on_the_second_page(*args: object, **kwargs: object) -> list[NewMessage]:
        calls.append("page")
        if len(calls) == 3:  # page 1: one edition (s0, s1 share it); page 2: two
            raise KeyboardInterrupt
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(fill_module, "FILL_PAGE", 2)
    with small_site(store_url, tmp_path) as fp:
        with monkeypatch.context() as patch:
            patch.setattr(fill_module, "new_messages", crash_on_the_second_page)
            with pytest.raises(KeyboardInterrupt):
                fp.outbox.fill(DUE)
        subs = fp.store.subscribers()
        done = [s.id for s in subs if s.watermark == DUE]
        assert done == [subs[0].id, subs[1].id]  # the first page: rows and watermarks
        assert [len(fp.store.outbox_messages(s.id)) for s in subs] == [1, 1, 0, 0]
        assert fp.outbox.fill(DUE).queued == 2  # the rest, nothing twice
        assert [len(fp.store.outbox_messages(s.id)) for s in subs] == [1, 1, 1, 1]


def test_pages_read_every_subscriber_once_by_id(store: Store) -> None:
    ids = add_subscribers(store, 9)
    store.remove_subscriber(ids[4])
    store.move_subscriber(ids[2], Action.UNSUBSCRIBE, T0)
    store.move_subscriber(ids[3], Action.UNSUBSCRIBE, T0)
    store.move_subscriber(ids[5], Action.UNSUBSCRIBE, T0)
    seen: list[int] = []
    lasts: list[int] = []
    last: int | None = 0
    while last is not None:
        page, last = store.subscriber_page(last, 3, SubscriberStatus.ACTIVE)
        seen += [s.id for s in page]
        lasts += [] if last is None else [last]
    assert seen == [s.id for s in store.subscribers(SubscriberStatus.ACTIVE)]
    assert lasts == sorted(set(lasts)) and len(lasts) == 3  # 8 ids, 3 a page
    assert [p.id for p in store.subscriber_page(0, 20)[0]] == [s.id for s in store.subscribers()]
    assert store.watermark_floor(SubscriberStatus.ACTIVE) == min(
        s.watermark for s in store.subscribers(SubscriberStatus.ACTIVE)
    )
    assert store.watermark_floor(SubscriberStatus.BOUNCED) is None


def test_bulk_rows_compare_in_sql_like_every_other_timestamp(store: Store, tmp_path: Path) -> None:
    """A digest waiting exactly at its deadline is not late yet; a microsecond later it is
    (the rows' timestamps are stored in the format the store's queries compare with)."""
    sub = add_subscribers(store, 1)[0]
    new = edition(make_settings(tmp_path, "sqlite://"))
    deadline = T0 + timedelta(hours=6)
    row = NewMessage(new.key, recipient(sub), f"<{sub}@x>", since=T0, deadline=deadline)
    store.fill_outbox(lambda: OutboxFill(T0, (new,), (row,)))
    assert store.outbox_next_due() == T0
    assert store.expire_outbox(deadline) == 0
    assert store.expire_outbox(deadline + timedelta(microseconds=1)) == 1


def test_a_cancelled_row_planned_again_is_queued_and_counted_once(
    store: Store, tmp_path: Path
) -> None:
    subs = add_subscribers(store, 2)
    new = edition(make_settings(tmp_path, "sqlite://"))
    messages = tuple(NewMessage(new.key, recipient(i), f"<{i}@x>") for i in subs)
    assert store.fill_outbox(lambda: OutboxFill(T0, (new,), messages))[1:] == (1, 2)
    assert store.cancel_outbox(subs[0], T0) == 1
    again = messages + messages  # the same pairs twice in one batch
    assert store.fill_outbox(lambda: OutboxFill(T0, (new,), again))[1:] == (0, 1)
    assert [m[1] for m in store.outbox_messages(subs[0])] == [OutboxState.QUEUED]


names = st.one_of(st.none(), st.text(max_size=30))
urls = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@given(name=names, unsubscribe=urls, preferences=urls, first=st.booleans(), given=names)
def test_personalisation_is_the_json_of_its_fields(
    name: str | None, unsubscribe: str, preferences: str, first: bool, given: str | None
) -> None:
    r = Recipient(1, "a@example.com", name, unsubscribe, preferences, first, given_name=given)
    fields: dict[str, object] = {"name": name, "unsubscribe_url": unsubscribe}
    fields["preferences_url"] = preferences
    if first:
        fields["first"] = True
    if given:
        fields["given_name"] = given
    text = personalisation(NewMessage("k", r, "<m@x>"))
    assert text == json.dumps(fields, ensure_ascii=False)
    assert json.loads(text) == fields


def test_recipients_carry_the_links_minted_one_by_one(store_url: str, tmp_path: Path) -> None:
    with small_site(store_url, tmp_path) as fp:
        links = fp.subscriptions.links
        sub = fp.store.subscribers()[0]
        (made,) = links.recipients({sub.id: Contact(sub.email, sub.name, sub.given_name)}).values()
        assert (made.unsubscribe_url, made.preferences_url) == (
            links.unsubscribe(sub.id),
            links.preferences(sub.id),
        )
        token = made.unsubscribe_url.rsplit("/", 1)[1]
        assert links.read(TokenPurpose.UNSUBSCRIBE, token).subscriber_id == sub.id


def test_a_fill_leaves_the_collector_as_it_found_it(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    with small_site(store_url, tmp_path) as fp:
        assert gc.isenabled()
        with monkeypatch.context() as patch:
            patch.setattr(fill_module, "new_messages", crash)
            with pytest.raises(KeyboardInterrupt):
                fp.outbox.fill(DUE)
        assert gc.isenabled()
        assert fp.outbox.fill(DUE).queued == 4
        assert gc.isenabled()


def test_a_fill_reads_only_the_subscribers_due(store_url: str, tmp_path: Path) -> None:
    """Each subscriber's next_due_at: unknown when added or when their schedule changes (read
    at the next fill), then their next slot (not read before it)."""
    with small_site(store_url, tmp_path) as fp:
        store, later = fp.store, DUE + timedelta(minutes=1)
        ids = [s.id for s in store.subscribers()]
        assert store.due_ranges(DUE, 2) == [(ids[0] - 1, ids[1]), (ids[2] - 1, ids[3])]
        first = store.subscribers()[0]
        weekly = Schedule(Frequency.WEEKLY, 3, time(8, 0), "UTC")  # a Thursday; DUE: Monday
        store.set_subscriber_preferences(first.id, Preferences(weekly, first.categories, None))
        assert fp.outbox.fill(DUE).queued == 3
        tomorrow = DUE + timedelta(days=1)
        assert (
            {s.id: s.next_due_at for s in store.subscribers()}
            == {
                first.id: DUE + timedelta(days=3),  # read, not due: its next slot stored
                **dict.fromkeys(ids[1:], tomorrow),
            }
        )
        assert store.due_ranges(later, FILL_PAGE) == []
        assert fp.outbox.fill(later).queued == 0
        store.set_subscriber_preferences(ids[2], Preferences(weekly, (), None))
        assert store.due_ranges(later, FILL_PAGE) == [(ids[2] - 1, ids[2])]
        assert store.due_ranges(tomorrow, FILL_PAGE) == [(ids[1] - 1, ids[3])]
        assert fp.outbox.fill(tomorrow).due == 2  # the weekly reader waits for Thursday
