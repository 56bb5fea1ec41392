"""Bounce addresses (VERP): each envelope sender names its outbox message; forgeries refused."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedpipe.clock import FixedClock
from feedpipe.errors import ConfigError
from feedpipe.mail import SmtpTransport
from feedpipe.mail.verp import ForgedTokenError, Verp
from feedpipe.outbox.dispatch import Dispatcher
from feedpipe.service import Feedpipe
from feedpipe.store import SqlStore, Store
from tests.outbox_helpers import SENDER, T0, add_subscribers, edition, queue
from tests.outbox_helpers import settings as make_settings
from tests.smtp_servers import RecordingHandler, serve

VERP = Verp("bounces@blog.example.com", "s3cret")
IDS = st.integers(min_value=1, max_value=2**60)


@given(IDS)
def test_every_sender_reads_back_as_its_message(outbox_id: int) -> None:
    sender = VERP.sender(outbox_id)
    local, _, domain = sender.partition("@")
    assert domain == "blog.example.com" and local.startswith("bounces+")
    assert len(local) <= 64  # RFC 5321 local-part limit
    assert VERP.read(sender) == outbox_id
    assert VERP.read(f"<{sender.upper()}>") == outbox_id  # an MTA that folds case


@given(IDS, st.data())
def test_an_altered_token_is_refused(outbox_id: int, data: st.DataObject) -> None:
    token = VERP.token(outbox_id)
    index = data.draw(st.integers(0, len(token) - 1))
    other = data.draw(st.sampled_from("0123456789abcdefghijklmnopqrstuvwxyz-").filter(
        lambda c: c != token[index]
    ))  # fmt: skip
    forged = token[:index] + other + token[index + 1 :]
    with pytest.raises(ForgedTokenError):
        VERP.read(f"bounces+{forged}@blog.example.com")


def test_other_keys_and_other_addresses() -> None:
    sender = VERP.sender(42)
    with pytest.raises(ForgedTokenError, match="not one feedpipe made"):
        Verp("bounces@blog.example.com", "another key").read(sender)
    assert VERP.read("bounces@blog.example.com") is None  # no token
    assert VERP.read("someone+x@blog.example.com") is None
    assert VERP.read(sender.replace("blog.example.com", "example.org")) is None
    assert VERP.find(["ada@example.com", sender]) == 42


def test_the_setting_is_checked(tmp_path: Path) -> None:
    for bad in ("bounces+x@blog.example.com", "bounces", "a b@blog.example.com"):
        with pytest.raises(ConfigError, match=r"\[email\] bounce_address: .*without '\+'"):
            make_settings(tmp_path, "sqlite://", bounce_address=bad)


def _send(store: Store, tmp_path: Path, port: int, **email: object) -> None:
    config = make_settings(
        tmp_path, "sqlite://", transport="smtp",
        smtp={"host": "127.0.0.1", "port": port, "concurrency": 1}, **email,
    )  # fmt: skip
    fp = Feedpipe(config, store, FixedClock(T0))
    options = fp.outbox.options()
    transport = SmtpTransport.from_settings(config)

    async def run() -> None:
        d = Dispatcher(store, transport, fp.clock, options, random.Random(1), owner="verp")
        try:
            await d.run()
        finally:
            await transport.aclose()

    asyncio.run(run())


def test_the_envelope_sender_names_each_message(tmp_path: Path, sqlite_store: SqlStore) -> None:
    subs = add_subscribers(sqlite_store, 3)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)
    with serve(RecordingHandler()) as server:
        _send(sqlite_store, tmp_path, server.port, bounce_address="bounces@blog.example.com")
    handler = server.recorder
    verp = Verp("bounces@blog.example.com", sqlite_store.meta_setdefault("token_secret"))
    refs = {m.outbox_id: m for m in sqlite_store.message_refs(outbox_ids=list(range(1, 10)))}
    assert len(handler.received) == 3
    for received in handler.received:
        outbox_id = verp.read(received.mail_from)
        assert outbox_id is not None
        assert (refs[outbox_id].recipient,) == received.rcpt_tos
        assert refs[outbox_id].message_id == received.message_id
        assert received.parse()["From"].addresses[0].addr_spec == SENDER  # From is unchanged


def test_without_a_bounce_address_the_sender_is_from_address(
    tmp_path: Path, sqlite_store: SqlStore
) -> None:
    subs = add_subscribers(sqlite_store, 2)
    queue(sqlite_store, edition(make_settings(tmp_path, "sqlite://")), subs)
    with serve(RecordingHandler()) as server:
        _send(sqlite_store, tmp_path, server.port)
    handler = server.recorder
    assert [r.mail_from for r in handler.received] == [SENDER, SENDER]
