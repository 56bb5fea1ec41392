"""The oldest publication time a sync touched since the last build (store.changed_from)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import post
from tests.test_build import service


def test_syncs_keep_the_oldest_time_they_touched_and_a_build_settles_it(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "old", date="2024-03-01T09:00:00Z")
    post(posts, "new", date="2026-05-01T09:00:00Z")
    with service(tmp_path, posts) as fp:
        fp.sync()
        assert fp.store.changed_from() is None  # a store that never kept it: not known
        assert fp.store.changed_from() == ""  # kept from then on
        fp.build()
        assert fp.store.changed_from() == ""
        post(posts, "newer", date="2026-06-01T09:00:00Z")
        fp.sync()
        assert fp.store.changed_from() == "2026-06-01T09:00:00.000000Z"
        post(posts, "old", date="2026-07-01T09:00:00Z", body="moved")  # old time counts too
        fp.sync()
        seen = fp.store.changed_from()
        assert seen == "2024-03-01T09:00:00.000000Z"
        (posts / "new.md").unlink()
        fp.sync()
        fp.store.settle_changes("2026-06-01T09:00:00.000000Z")  # a sync came after: kept
        assert fp.store.changed_from() == seen
        fp.store.settle_changes(seen)
        assert fp.store.changed_from() == ""
