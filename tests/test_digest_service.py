"""DigestService over a real store: plan → recipients → commit, tokens in links, removed posts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedpipe.clock import FixedClock
from feedpipe.model import Action
from feedpipe.service import Feedpipe
from feedpipe.settings import settings_from_mapping
from feedpipe.subscriptions.tokens import TokenPurpose, max_age, read_token

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def write_post(
    folder: Path, slug: str, categories: str, draft: bool = False, date: str = "2026-03-01T00:30Z"
) -> Path:
    """A post published (by default) just after the tests' subscribers subscribed."""
    path = folder / f"{slug}.md"
    path.write_text(
        f'---\ntitle: "{slug}"\ndate: {date}\ncategories: {categories}\n'
        f"draft: {str(draft).lower()}\n---\nBody of {slug}.\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def service(store_url: str, tmp_path: Path) -> Iterator[tuple[Feedpipe, FixedClock]]:
    (tmp_path / "posts").mkdir()
    write_post(tmp_path / "posts", "old", '["Rust"]', date="2026-02-01T09:00:00Z")
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(tmp_path / "posts")},
        "store": {"url": store_url},
        "digest": {"timezone": "UTC", "send_time": "08:00"},
        "web": {"base_url": "https://news.example.com"},
    }
    settings = settings_from_mapping(data, tmp_path, "test", {})
    clock = FixedClock(T0)
    with Feedpipe.from_settings(settings, clock) as fp:
        fp.sync()
        yield fp, clock


def subscribe(fp: Feedpipe, email: str, categories: str = "") -> int:
    fields = {"email": email, "categories": categories, "status": "active"}
    return fp.subscriptions.add(fields).id


def test_cycle_plan_recipients_commit(service: tuple[Feedpipe, FixedClock], tmp_path: Path) -> None:
    fp, clock = service
    rust = subscribe(fp, "rust@example.com", "rust")
    everyone = subscribe(fp, "all@example.com")
    clock.set(T0 + timedelta(hours=2))
    write_post(tmp_path / "posts", "new-rust", '["Rust", "Python"]')
    write_post(tmp_path / "posts", "new-go", '["Go"]')
    fp.sync()

    plan = fp.digests.plan(T0 + timedelta(hours=8))
    assert set(plan.watermarks) == {rust, everyone}
    by_sub = {i: e for e in plan.editions for i in e.subscriber_ids}
    assert [p.slug for s in by_sub[rust].content.sections for p in s.posts] == ["new-rust"]
    sections = by_sub[everyone].content.sections
    assert [(s.title, [p.slug for p in s.posts]) for s in sections] == [
        ("Go", ["new-go"]),
        ("Rust", ["new-rust"]),
    ]

    recipients = fp.digests.recipients(plan)
    (mine,) = recipients[by_sub[rust].key]
    assert mine.email == "rust@example.com"
    assert mine.unsubscribe_url.startswith("https://news.example.com/u/")
    assert mine.preferences_url.startswith("https://news.example.com/p/")
    secret = fp.digests.secret()
    token = mine.unsubscribe_url.rsplit("/", 1)[1]
    limit = max_age(TokenPurpose.UNSUBSCRIBE)
    assert read_token(secret, TokenPurpose.UNSUBSCRIBE, token, limit, now=clock.now()) == rust

    fp.store.advance_watermarks(plan.watermarks)  # what the outbox fill does with its rows
    again = fp.digests.plan(T0 + timedelta(hours=9))
    assert again.editions == () and again.watermarks == {}
    stored = fp.store.subscriber_by_id(rust)
    assert stored is not None and stored.watermark == T0 + timedelta(hours=8)


def test_posts_removed_or_drafted_before_sending_are_left_out(
    service: tuple[Feedpipe, FixedClock], tmp_path: Path
) -> None:
    fp, clock = service
    subscribe(fp, "all@example.com")
    clock.set(T0 + timedelta(hours=1))
    gone = write_post(tmp_path / "posts", "gone", '["Rust"]')
    write_post(tmp_path / "posts", "drafted", '["Rust"]')
    write_post(tmp_path / "posts", "kept", '["Rust"]')
    fp.sync()
    clock.set(T0 + timedelta(hours=2))
    gone.unlink()
    write_post(tmp_path / "posts", "drafted", '["Rust"]', draft=True)
    fp.sync()
    plan = fp.digests.plan(T0 + timedelta(hours=8))
    (edition,) = plan.editions
    assert [p.slug for s in edition.content.sections for p in s.posts] == ["kept"]


def test_only_active_subscribers_are_planned(service: tuple[Feedpipe, FixedClock]) -> None:
    fp, clock = service
    sub_id = subscribe(fp, "a@example.com")
    fp.store.move_subscriber(sub_id, Action.UNSUBSCRIBE, clock.now())
    assert fp.digests.plan(T0 + timedelta(days=2)).watermarks == {}


def test_secret_key_from_environment_signs_links(tmp_path: Path, sqlite_url: str) -> None:
    data = {"site": {"title": "B", "url": "https://blog.example.com"}}
    env = {"FEEDPIPE_SECRET_KEY": "env-secret", "FEEDPIPE_STORE_URL": sqlite_url}
    settings = settings_from_mapping(data, tmp_path, "test", env)
    with Feedpipe.from_settings(settings, FixedClock(T0)) as fp:
        assert fp.digests.secret() == "env-secret"
        assert fp.store.get_meta("token_secret") is None
