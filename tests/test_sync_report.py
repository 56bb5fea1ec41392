"""Honest sync reports: current warnings every time, counts that add up, each file named once."""

from __future__ import annotations

from pathlib import Path

from feedpipe.model import SyncReport
from tests.helpers import post
from tests.test_build import service


def folder(tmp_path: Path) -> Path:
    posts = tmp_path / "posts"
    post(posts, "ok")
    post(posts, "warned", extra="updated: 2025-01-01T00:00:00Z\n")  # earlier than the date
    post(posts, "draft", extra="draft: true\n")
    post(posts, "soon", date="2027-01-01T00:00:00Z")
    (posts / "broken.md").write_text("---\ntitle: x\n", encoding="utf-8")
    return posts


def buckets(report: SyncReport) -> tuple[int, ...]:
    return (
        len(report.added),
        len(report.drafts),
        len(report.scheduled),
        len(report.updated),
        len(report.removed),
        report.unchanged,
        len(report.skipped),
    )


def test_counts_add_up_and_drafts_and_scheduled_are_not_added(tmp_path: Path) -> None:
    posts = folder(tmp_path)
    with service(tmp_path, posts) as fp:
        first = fp.sync()
        assert buckets(first) == (2, 1, 1, 0, 0, 0, 1)
        assert (first.drafts, first.scheduled) == (("draft",), ("soon",))
        assert first.seen == 5  # every file once
        again = fp.sync()  # nothing changed: nothing parsed again
        assert buckets(again) == (0, 0, 0, 0, 0, 4, 1) and again.seen == 5
        (posts / "ok.md").unlink()
        post(posts, "warned", title="Changed", extra="updated: 2025-01-01T00:00:00Z\n")
        third = fp.sync()
        assert buckets(third) == (0, 0, 0, 1, 1, 2, 1) and third.seen == 5  # 4 files + 1 gone


def test_every_sync_reports_the_current_warnings_of_every_document(tmp_path: Path) -> None:
    posts = folder(tmp_path)
    with service(tmp_path, posts) as fp:
        first = fp.sync()
        again = fp.sync()
    (warning,) = first.warnings
    assert warning.reason.startswith("warned.md: updated: ") and "earlier than the date" in (
        warning.reason
    )
    assert again.warnings == first.warnings and again.skipped == first.skipped


def test_an_unchanged_source_is_told_by_its_scan_digest_and_reports_as_a_full_sync(
    tmp_path: Path,
) -> None:
    """A sync whose scan equals the last whole sync's reads two summaries instead of every
    document's state, and reports exactly what the full comparison reports; any change to a
    file's stat (or a file added or gone) goes the full way again."""
    import os
    from dataclasses import replace

    from feedpipe.sync.run import SCAN_META

    posts = folder(tmp_path)
    with service(tmp_path, posts) as fp:
        fp.sync()
        fast = fp.sync()
        fp.store.set_meta(SCAN_META, "")  # forget the digest: the full comparison
        full = fp.sync()
        assert replace(fast, seconds=0) == replace(full, seconds=0)
        assert fp.store.get_meta(SCAN_META)  # the full sync stored the digest again
        stat = (posts / "ok.md").stat()
        os.utime(posts / "ok.md", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
        post(posts, "new")
        touched = fp.sync()
        assert touched.added == ("new",) and touched.unchanged == 4
        (posts / "new.md").unlink()
        assert fp.sync().removed == ("new",)
