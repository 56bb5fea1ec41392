"""Signed subscriber tokens: round trip, forged, altered, expired, other purpose or subscriber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from feedpipe.errors import ValidationError
from feedpipe.settings import Secret
from feedpipe.store import Store
from feedpipe.subscriptions.tokens import (
    InvalidTokenError,
    TokenMaker,
    TokenPurpose,
    make_token,
    max_age,
    preferences_url,
    read_token,
    token_secret,
    unsubscribe_url,
)
from tests.helpers import sqlite_file_url

SECRET = "test-secret-key-0123456789"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def test_round_trip_for_every_purpose() -> None:
    for purpose in TokenPurpose:
        token = make_token(SECRET, purpose, 42, now=NOW)
        assert read_token(SECRET, purpose, token, DAY, now=NOW + timedelta(hours=1)) == 42


def test_token_maker_matches_stock_itsdangerous() -> None:
    token = TokenMaker(SECRET, NOW).make(TokenPurpose.UNSUBSCRIBE, 7)
    stock = URLSafeTimedSerializer(SECRET, salt="feedpipe.unsubscribe")
    assert stock.loads(token) == 7
    assert token == make_token(SECRET, TokenPurpose.UNSUBSCRIBE, 7, now=NOW)


def test_forged_with_another_key_is_rejected() -> None:
    forged = make_token("attacker-key", TokenPurpose.UNSUBSCRIBE, 42, now=NOW)
    with pytest.raises(InvalidTokenError, match="not valid"):
        read_token(SECRET, TokenPurpose.UNSUBSCRIBE, forged, DAY, now=NOW)


@pytest.mark.parametrize("where", [0, 5, -10])  # payload, timestamp, signature
def test_altered_token_is_rejected(where: int) -> None:
    token = make_token(SECRET, TokenPurpose.PREFERENCES, 42, now=NOW)
    index = where % len(token)
    flipped = "B" if token[index] != "B" else "C"
    altered = token[:index] + flipped + token[index + 1 :]
    with pytest.raises(InvalidTokenError):
        read_token(SECRET, TokenPurpose.PREFERENCES, altered, DAY, now=NOW)


def test_other_subscriber_payload_with_old_signature_is_rejected() -> None:
    mine = make_token(SECRET, TokenPurpose.UNSUBSCRIBE, 42, now=NOW)
    theirs = make_token(SECRET, TokenPurpose.UNSUBSCRIBE, 43, now=NOW)
    spliced = theirs.split(".")[0] + "." + ".".join(mine.split(".")[1:])
    with pytest.raises(InvalidTokenError):
        read_token(SECRET, TokenPurpose.UNSUBSCRIBE, spliced, DAY, now=NOW)
    assert read_token(SECRET, TokenPurpose.UNSUBSCRIBE, theirs, DAY, now=NOW) == 43


def test_expired_token_is_rejected() -> None:
    token = make_token(SECRET, TokenPurpose.CONFIRM, 42, now=NOW)
    limit = max_age(TokenPurpose.CONFIRM)
    assert read_token(SECRET, TokenPurpose.CONFIRM, token, limit, now=NOW + limit) == 42
    with pytest.raises(InvalidTokenError, match="expired"):
        read_token(
            SECRET, TokenPurpose.CONFIRM, token, limit, now=NOW + limit + timedelta(seconds=1)
        )


def test_other_purpose_is_rejected() -> None:
    token = make_token(SECRET, TokenPurpose.UNSUBSCRIBE, 42, now=NOW)
    for purpose in (TokenPurpose.PREFERENCES, TokenPurpose.CONFIRM):
        with pytest.raises(InvalidTokenError):
            read_token(SECRET, purpose, token, DAY, now=NOW)


def test_garbage_is_a_validation_error() -> None:
    for junk in ("", "abc", "....", "x" * 500):
        with pytest.raises(ValidationError):
            read_token(SECRET, TokenPurpose.UNSUBSCRIBE, junk, DAY, now=NOW)


def test_non_integer_payload_is_rejected() -> None:
    stock = URLSafeTimedSerializer(SECRET, salt="feedpipe.unsubscribe")
    for payload in ("42", [42], True):
        with pytest.raises(InvalidTokenError):
            read_token(SECRET, TokenPurpose.UNSUBSCRIBE, stock.dumps(payload), DAY)


def test_links() -> None:
    assert unsubscribe_url("https://news.example.com/", "t0k") == "https://news.example.com/u/t0k"
    assert preferences_url("https://news.example.com", "t0k") == "https://news.example.com/p/t0k"


class _Settings:
    def __init__(self, secret: str | None) -> None:
        self.secret_key = Secret(secret) if secret else None


def test_secret_from_environment_wins(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as store:
        assert token_secret(_Settings("from-env"), store) == "from-env"
        assert store.get_meta("token_secret") is None


def test_secret_without_environment_is_generated_once_per_store(
    tmp_path: Path, sqlite_url: str
) -> None:
    with Store.open(sqlite_url) as store:
        first = token_secret(_Settings(None), store)
    with Store.open(sqlite_url) as store:
        assert token_secret(_Settings(None), store) == first
    with Store.open(sqlite_file_url(tmp_path, "other.db")) as other:
        assert token_secret(_Settings(None), other) != first


class _FrozenSigner(TimestampSigner):
    """Stock itsdangerous signing, at a fixed time (the oracle for TokenMaker)."""

    stamp = 0

    def get_timestamp(self) -> int:
        return self.stamp


@settings(max_examples=200, deadline=None)
@given(
    subscriber_id=st.integers(min_value=0, max_value=2**31 - 1),  # ids: 32-bit (never compressed)
    seconds=st.integers(min_value=0, max_value=2**33),
    secret=st.text(min_size=1, max_size=40),
    purpose=st.sampled_from(list(TokenPurpose)),
)
def test_token_maker_is_stock_itsdangerous_byte_for_byte(
    subscriber_id: int, seconds: int, secret: str, purpose: TokenPurpose
) -> None:
    now = datetime.fromtimestamp(seconds, UTC)
    signer = type("Signer", (_FrozenSigner,), {"stamp": seconds})
    stock = URLSafeTimedSerializer(secret, salt=f"feedpipe.{purpose.value}", signer=signer)
    assert TokenMaker(secret, now).make(purpose, subscriber_id) == stock.dumps(subscriber_id)
