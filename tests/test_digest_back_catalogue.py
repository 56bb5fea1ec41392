"""No back catalogue: subscribers imported before, during and after the first sync of a
10,000-post site get none of its old posts, only what is published after they subscribed."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedpipe.clock import FixedClock
from feedpipe.service import Feedpipe
from feedpipe.settings import settings_from_mapping

SYNCED = datetime(2026, 11, 1, 10, tzinfo=UTC)  # the store's first sync
OLD_POSTS = 10_000


def write_site(folder: Path) -> None:
    """10,000 tiny posts, one an hour back from before anyone subscribed."""
    folder.mkdir()
    newest = SYNCED - timedelta(days=4)
    for i in range(OLD_POSTS):
        date = (newest - timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = (
            f'---\ntitle: "Old {i}"\nslug: old-{i}\ndate: {date}\ncategories: [C{i % 7}]\n---\nx\n'
        )
        (folder / f"old-{i}.md").write_text(text, encoding="utf-8")


def import_csv(fp: Feedpipe, *emails: str) -> None:
    rows = "".join(f"{e},,,daily,,08:00,UTC,active\n" for e in emails)
    report = fp.subscriptions.import_csv(
        io.StringIO("email,name,categories,frequency,weekday,time,timezone,status\n" + rows)
    )
    assert report.added == len(emails), report.errors


def test_no_subscriber_gets_the_back_catalogue(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    posts = tmp_path / "posts"
    write_site(posts)
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(posts)},
        "store": {"url": sqlite_url},
        "web": {"base_url": "https://news.example.com"},
    }
    clock = FixedClock(SYNCED - timedelta(days=3))
    with Feedpipe.from_settings(settings_from_mapping(data, tmp_path, "t", {}), clock) as fp:
        import_csv(fp, "before@example.com")
        clock.set(SYNCED)
        apply_sync = fp.store.apply_sync
        batches: list[int] = []

        def apply_then_import(*args: Any, **kwargs: Any) -> Any:  # between two batches
            result = apply_sync(*args, **kwargs)
            batches.append(fp.post_count())
            if len(batches) == 1:
                clock.advance(timedelta(minutes=1))
                import_csv(fp, "during@example.com")
                clock.advance(timedelta(minutes=1))  # later batches are first seen after them
            return result

        monkeypatch.setattr(fp.store, "apply_sync", apply_then_import)
        report = fp.sync()
        assert len(report.added) == OLD_POSTS and 0 < batches[0] < OLD_POSTS  # really during
        clock.set(SYNCED + timedelta(hours=1))
        import_csv(fp, "after@example.com")

        def posts_for(now: datetime) -> dict[str, list[str]]:
            plan = fp.digests.plan(now)
            emails = fp.subscriptions.emails(list(plan.advances))
            got: dict[str, list[str]] = {emails[i]: [] for i in plan.advances}
            for edition in plan.editions:
                for i in edition.subscriber_ids:
                    got[emails[i]] = [p.slug for s in edition.content.sections for p in s.posts]
            fp.outbox.fill(now)
            return got

        first = SYNCED.replace(hour=8) + timedelta(days=1)
        everyone = ["after@example.com", "before@example.com", "during@example.com"]
        assert posts_for(first) == {e: [] for e in everyone}  # due, nothing new
        monkeypatch.undo()
        text = (
            '---\ntitle: "New"\nslug: new\ndate: 2026-11-02T09:00:00Z\ncategories: [C1]\n---\nx\n'
        )
        (posts / "new.md").write_text(text, encoding="utf-8")
        clock.set(SYNCED + timedelta(days=1, hours=1))
        assert fp.sync().added == ("new",)
        assert posts_for(first + timedelta(days=1)) == {e: ["new"] for e in everyone}


def test_a_restored_or_imported_site_stays_old_for_long_time_readers(
    tmp_path: Path, sqlite_url: str
) -> None:
    """A reader subscribed for years; the store is rebuilt from the files (a restore, a move
    from another blog engine): posts first seen long after their dates are not mailed."""
    posts = tmp_path / "posts"
    posts.mkdir()
    for i in range(30):
        date = (SYNCED - timedelta(days=10 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        (posts / f"p{i}.md").write_text(f"---\ntitle: P{i}\ndate: {date}\n---\nx\n", "utf-8")
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "source": {"path": str(posts)},
        "store": {"url": sqlite_url},
    }
    clock = FixedClock(SYNCED - timedelta(days=900))
    with Feedpipe.from_settings(settings_from_mapping(data, tmp_path, "t", {}), clock) as fp:
        import_csv(fp, "veteran@example.com")
        clock.set(SYNCED)
        fp.sync()
        plan: Callable[[datetime], Any] = fp.digests.plan
        result = plan(SYNCED + timedelta(hours=22))
        assert result.editions == () and len(result.advances) == 1
