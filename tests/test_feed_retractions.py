"""Retractions: a removed post, or one made a draft again, leaves every feed with a tombstone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from feedpipe.clock import FixedClock
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from tests.helpers import post, write_config
from tests.test_build import SCHEMAS

AT = "http://purl.org/atompub/tombstones/1.0"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FEEDS = ("", "category/rust/")  # both list the retracted post


def _service(root: Path, posts: Path, clock: FixedClock) -> Feedpipe:
    config = write_config(root, posts, max_items="2", archive_size="2")
    return Feedpipe.from_settings(load_settings(config, env={}), clock)


def _guids(out: Path, folder: str) -> set[str]:
    """Every id in the feed: subscription document, archive pages, all three formats."""
    ids: set[str] = set()
    for path in [out / folder / n for n in ("feed.xml", "atom.xml")] + sorted(
        (out / folder / "history").glob("*.xml")
    ):
        ids |= {e.id for e in feedparser.parse(path.read_bytes()).entries}
    for path in [out / folder / "feed.json", *sorted((out / folder / "history").glob("*.json"))]:
        ids |= {i["id"] for i in json.loads(path.read_bytes())["items"]}
    return ids


def _tombstones(out: Path, folder: str) -> dict[str, str]:
    atom = etree.parse(str(out / folder / "atom.xml"))
    schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    assert schema.validate(atom), schema.error_log
    assert not feedparser.parse((out / folder / "atom.xml").read_bytes()).bozo
    return {t.get("ref", ""): t.get("when", "") for t in atom.iter(f"{{{AT}}}deleted-entry")}


@pytest.mark.parametrize("how", ["file removed", "made a draft"])
def test_a_retracted_post_leaves_every_feed_with_a_tombstone_for_a_while(
    tmp_path: Path, how: str
) -> None:
    posts = tmp_path / "posts"
    for n in range(6):
        post(posts, f"p{n}", categories="[Rust]", date=f"2026-0{n + 1}-01T09:00:00Z")
    gone = posts / "p1.md"  # an old post: it sits on an archive page
    clock = FixedClock(NOW)
    out = tmp_path / "out"
    with _service(tmp_path, posts, clock) as fp:
        fp.build()
        guid = next(
            p.guid for p in fp.store.posts_by_ids(list(range(1, 10))).values() if p.slug == "p1"
        )
        assert all(guid in _guids(out, f) for f in FEEDS)
        clock.advance(timedelta(hours=1))
        if how == "file removed":
            gone.unlink()
        else:
            gone.write_text(
                gone.read_text("utf-8").replace("---\n", "---\ndraft: true\n", 1), "utf-8"
            )
        fp.build()
        for folder in FEEDS:
            assert guid not in _guids(out, folder)
            assert _tombstones(out, folder) == {guid: "2026-11-21T13:00:00Z"}
            assert not feedparser.parse((out / folder / "feed.xml").read_bytes()).bozo
        clock.advance(timedelta(days=29))
        assert fp.build().written == ()  # still within [feeds] tombstone_days = 30
        clock.advance(timedelta(days=1, seconds=1))
        report = fp.build()  # the tombstone expired: the feeds are rewritten without it
    assert "atom.xml" in report.written and "category/rust/atom.xml" in report.written
    assert all(_tombstones(out, f) == {} for f in FEEDS)


def test_a_post_that_was_never_published_leaves_no_tombstone(tmp_path: Path) -> None:
    """A draft deleted unpublished, and a future post withdrawn before it came due."""
    posts = tmp_path / "posts"
    post(posts, "kept", categories="[Rust]")
    draft = post(posts, "draft", categories="[Rust]", extra="draft: true\n")
    future = post(posts, "future", categories="[Rust]", date="2027-01-01T00:00:00Z")
    clock = FixedClock(NOW)
    with _service(tmp_path, posts, clock) as fp:
        fp.build()
        clock.advance(timedelta(hours=1))
        draft.unlink()
        future.unlink()
        fp.build()
    assert _tombstones(tmp_path / "out", "") == {}
