"""The fill step over a real site: plan, render once, rows and watermarks in one transaction."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path

import pytest

from feedpipe.clock import FixedClock
from feedpipe.digests.model import PlannedEdition
from feedpipe.emails.mime import MimeTemplate
from feedpipe.emails.render import EmailRenderer
from feedpipe.model import NewEdition, OutboxState
from feedpipe.outbox import fill as fill_module
from feedpipe.service import Feedpipe
from feedpipe.settings import settings_from_mapping

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DUE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def write_post(folder: Path, slug: str, categories: str, date: str = "2026-03-01T09:00Z") -> None:
    text = f'---\ntitle: "{slug}"\ndate: {date}\ncategories: {categories}\n---\nB.\n'
    (folder / f"{slug}.md").write_text(text, encoding="utf-8")


@contextmanager
def small_site(
    store_url: str, tmp_path: Path, email: dict[str, str] | None = None
) -> Iterator[Feedpipe]:
    """Four subscribers (two categories) and two posts first seen after they subscribed."""
    posts = tmp_path / "posts"
    posts.mkdir()
    write_post(posts, "old", '["Rust", "Python"]', "2026-02-01T09:00Z")
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(posts)},
        "store": {"url": store_url},
        "digest": {"timezone": "UTC", "send_time": "08:00"},
        "web": {"base_url": "https://news.example.com"},
        "email": email or {},
    }
    clock = FixedClock(T0)
    with Feedpipe.from_settings(settings_from_mapping(data, tmp_path, "t", {}), clock) as fp:
        fp.sync()
        for i, cats in enumerate(["Rust", "Rust", "Python", ""]):
            fp.subscriptions.add(
                {"email": f"s{i}@example.com", "categories": cats, "status": "active"}
            )
        write_post(posts, "new-rust", '["Rust"]')
        write_post(posts, "new-python", '["Python"]')
        clock.set(T0 + timedelta(hours=10))
        fp.sync()
        yield fp


@pytest.fixture
def fp(store_url: str, tmp_path: Path) -> Iterator[Feedpipe]:
    with small_site(store_url, tmp_path) as site:
        yield site


def test_fill_renders_each_edition_once_and_writes_every_row(
    fp: Feedpipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders: list[str] = []
    original = fill_module.new_edition

    def counting(renderer: EmailRenderer, edition: PlannedEdition, now: datetime) -> NewEdition:
        renders.append(edition.key)
        return original(renderer, edition, now)

    monkeypatch.setattr(fill_module, "new_edition", counting)
    report = fp.outbox.fill(DUE)
    assert (report.due, report.editions, report.queued) == (4, 3, 4)
    assert len(renders) == len(set(renders)) == 3
    assert fp.outbox.counts()[OutboxState.QUEUED] == 4
    assert all(s.watermark == DUE for s in fp.store.subscribers())


def test_fill_twice_plans_nothing_twice(fp: Feedpipe) -> None:
    first = fp.outbox.fill(DUE)
    rows = [fp.store.outbox_messages(s.id) for s in fp.store.subscribers()]
    second = fp.outbox.fill(DUE + timedelta(minutes=1))
    assert first.queued == 4 and second.queued == 0
    assert [fp.store.outbox_messages(s.id) for s in fp.store.subscribers()] == rows


def test_a_crash_before_the_commit_loses_nothing(
    fp: Feedpipe, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(fill_module, "new_messages", crash)
        with pytest.raises(KeyboardInterrupt):
            fp.outbox.fill(DUE)
    assert fp.outbox.counts()[OutboxState.QUEUED] == 0
    assert all(s.watermark < DUE for s in fp.store.subscribers())
    assert fp.outbox.fill(DUE).queued == 4


def test_a_template_change_makes_new_editions_and_keeps_queued_ones(
    store_url: str, tmp_path: Path
) -> None:
    """An edition is keyed by what renders it: after editing the site's subject template the
    same posts render anew (new key, new Subject) for the next subscriber due; the message
    already queued keeps its edition and Subject."""
    posts, templates = tmp_path / "posts", tmp_path / "templates"
    posts.mkdir()
    templates.mkdir()
    subject = templates / "subject.txt.j2"
    subject.write_text("Old: {{ site.title }}\n", encoding="utf-8")
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(posts)},
        "store": {"url": store_url},
        "digest": {"timezone": "UTC", "send_time": "08:00", "templates_dir": str(templates)},
        "web": {"base_url": "https://news.example.com"},
    }
    clock = FixedClock(T0)
    with Feedpipe.from_settings(settings_from_mapping(data, tmp_path, "t", {}), clock) as fp:
        for address, at in (("a@example.com", "08:00"), ("b@example.com", "12:00")):
            fp.subscriptions.add({"email": address, "status": "active", "time": at})
        clock.set(T0 + timedelta(hours=10))
        write_post(posts, "new", '["Rust"]')
        fp.sync()
        assert fp.outbox.fill(T0 + timedelta(hours=11)).queued == 1  # a, old template
        (first,) = fp.store.outbox_messages(1)
        subject.write_text("New: {{ site.title }}\n", encoding="utf-8")
        assert fp.outbox.fill(T0 + timedelta(hours=12)).editions == 1  # b: same posts
        (second,) = fp.store.outbox_messages(2)
        assert fp.store.outbox_messages(1) == [first]  # queued: not rewritten
        templates_by_key = fp.store.edition_templates([first[0], second[0]])
    assert first[0] != second[0]
    subjects = {k: parse_subject(v) for k, v in templates_by_key.items()}
    assert (subjects[first[0]], subjects[second[0]]) == ("Old: Blog", "New: Blog")


def parse_subject(dumped: bytes) -> str:
    data = MimeTemplate.load(dumped).data
    message = email.message_from_bytes(data, policy=policy.default)
    return str(message["Subject"])
