"""End to end: sync a folder into the store and build feeds; incremental and stable."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

from feedpipe.clock import FixedClock
from feedpipe.service import Feedpipe
from feedpipe.settings import load_settings
from tests.helpers import post, write_config

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def service(root: Path, posts: Path, store_url: str | None = None, **feeds: str) -> Feedpipe:
    root.mkdir(parents=True, exist_ok=True)
    config = write_config(root, posts, store_url, **feeds)
    return Feedpipe.from_settings(load_settings(config, env={}), FixedClock(NOW))


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("blog", ["blog-000", "blog-001", "blog-002", "blog-003", "blog-004"])
def test_every_corpus_folder_builds_valid_stable_feeds(
    tmp_path: Path, corpus_dir: Path, blog: str
) -> None:
    with service(tmp_path, corpus_dir / blog) as fp:
        report = fp.build()
        assert report.sync is not None and not report.sync.skipped
        first = snapshot(tmp_path / "out")
        again = fp.build(full=True)
    assert again.written == ()  # a full re-render gives byte-identical files
    assert snapshot(tmp_path / "out") == first
    posts = {p.stem for p in (corpus_dir / blog).glob("*.md")}
    site = feedparser.parse(first["feed.xml"])
    assert not site.bozo, site.get("bozo_exception")
    expected = min(50, len(posts) - (1 if blog == "blog-003" else 0))
    assert len(site.entries) == expected
    dates = [e.published_parsed for e in site.entries]
    assert dates == sorted(dates, reverse=True)
    for entry in site.entries:
        assert entry.link.startswith("https://blog.example.com/posts/")
        assert entry.id.startswith("urn:uuid:")
    opml = etree.fromstring(first["feeds.opml"])
    urls = {o.get("xmlUrl") for o in opml.iter("outline")}
    feeds = [k for k in first if k.endswith("feed.xml")]
    assert len(urls) == len(feeds)


SCHEMAS = Path(__file__).parent / "schemas"


@pytest.mark.parametrize("blog", ["blog-000", "blog-001", "blog-002", "blog-003", "blog-004"])
def test_every_feed_of_every_corpus_folder_validates(
    tmp_path: Path, corpus_dir: Path, blog: str
) -> None:
    atom_schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    json_schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text("utf-8"))
    validator = Draft202012Validator(json_schema, format_checker=FormatChecker())
    with service(tmp_path, corpus_dir / blog) as fp:
        fp.build()
        files = snapshot(tmp_path / "out")
    checked = 0
    for path, data in files.items():
        if path.endswith("atom.xml"):
            doc = etree.fromstring(data)
            assert atom_schema.validate(doc), (path, atom_schema.error_log)
            parsed = feedparser.parse(data)
            assert not parsed.bozo and parsed.entries, path
            for entry in parsed.entries:
                assert entry.link.startswith("https://blog.example.com/posts/")
                assert entry.published_parsed and entry.updated_parsed
            checked += 1
        elif path.endswith("feed.xml"):
            parsed = feedparser.parse(data)
            assert not parsed.bozo and parsed.version == "rss20", path
            rss_ids = [e.id for e in parsed.entries]
            atom_ids = [e.id for e in feedparser.parse(files[path[:-8] + "atom.xml"]).entries]
            assert rss_ids == atom_ids and len(set(rss_ids)) == len(rss_ids)
        elif path.endswith("feed.json"):
            feed = json.loads(data)
            validator.validate(feed)
            assert feed["items"] and all(i["url"].startswith("https://") for i in feed["items"])
    assert checked >= 2


def test_category_names_normalise_into_one_feed_each(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories='["DevOps", "C", "AI/ML"]')
    post(posts, "b", categories='["devops", "C++", "日本語"]')
    post(posts, "c", categories='["DEVOPS", "C#", "High Throughput Systems"]')
    post(posts, "d", categories='["High-Throughput Systems"]')
    with service(tmp_path, posts) as fp:
        fp.build()
    out = tmp_path / "out" / "category"
    names = sorted(p.name for p in out.iterdir())
    assert "devops" in names and "c" in names and "c-plus-plus" in names and "c-sharp" in names
    assert "ai-ml" in names and "ri-ben-yu" in names
    assert len([n for n in names if n.startswith("high-throughput-systems")]) == 2
    devops = feedparser.parse((out / "devops" / "feed.xml").read_bytes())
    assert len(devops.entries) == 3
    assert devops.feed.title == "Test Blog — DevOps"


def test_incremental_build_writes_only_affected_feeds(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories="[Rust]", tags="[fast]")
    post(posts, "b", categories="[Go]")
    with service(tmp_path, posts) as fp:
        fp.build()
        assert fp.build().written == ()
        post(posts, "c", categories="[Rust]", date="2026-02-01T00:00:00Z")
        report = fp.build()
    written = set(report.written)
    assert "category/rust/feed.xml" in written and "feed.xml" in written
    assert not any(p.startswith("category/go/") for p in written)
    assert not any(p.startswith("tag/fast/") for p in written)


def test_removed_file_soft_removes_post_and_its_empty_category_feed(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", categories="[Rust]")
    gone = post(posts, "b", categories="[Go]")
    with service(tmp_path, posts) as fp:
        fp.build()
        gone.unlink()
        report = fp.build()
    assert report.sync is not None and report.sync.removed == ("b",)
    assert "category/go/feed.xml" in report.removed
    assert not (tmp_path / "out" / "category" / "go").exists()
    site = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes())
    assert [e.title for e in site.entries] == ["a"]


def test_future_post_appears_when_due(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "now", date="2026-11-01T00:00:00Z")
    post(posts, "later", date="2026-11-22T00:00:00Z", categories="[Soon]")
    with service(tmp_path, posts) as fp:
        fp.build()
        assert not (tmp_path / "out" / "category" / "soon").exists()
        assert isinstance(fp.clock, FixedClock)
        fp.clock.advance(timedelta(days=1))
        report = fp.build()
    assert "category/soon/feed.xml" in report.written
    site = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes())
    assert [e.title for e in site.entries] == ["later", "now"]


def test_unchanged_files_are_not_reparsed(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    path = post(posts, "a")
    with service(tmp_path, posts) as fp:
        fp.sync()
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same bytes
        report = fp.sync()
        assert (report.added, report.updated, report.unchanged) == ((), (), 1)
        docs = fp.store.source_docs()
    assert docs["a.md"].mtime_ns == stat.st_mtime_ns + 10**9


def test_ids_stay_when_title_date_and_content_change(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "a", title="First")
    with service(tmp_path, posts) as fp:
        fp.build()
        before = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes()).entries[0].id
        post(posts, "a", title="Renamed", date="2026-03-03T00:00:00Z", body="New body")
        report = fp.build()
    assert report.sync is not None and report.sync.updated == ("a",)
    after = feedparser.parse((tmp_path / "out" / "atom.xml").read_bytes()).entries[0]
    assert after.id == before and after.title == "Renamed"


def test_bad_posts_are_skipped_and_reported_but_the_rest_build(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "good")
    (posts / "nofm.md").write_text("just text\n", encoding="utf-8")
    post(posts, "nodate", date="not-a-date")
    with service(tmp_path, posts) as fp:
        report = fp.build()
        again = fp.sync()
    assert report.sync is not None and report.sync.added == ("good",)
    skipped = {s.key for s in report.sync.skipped}
    assert skipped == {"nofm.md", "nodate.md"}
    assert any("not-a-date" in s.reason for s in report.sync.skipped)
    assert {s.key for s in again.skipped} == skipped  # still reported, not re-parsed


def test_traversal_in_slug_and_category_stays_inside_output_dir(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "x", extra="", categories='["../../escape", "a/b"]')
    (posts / "evil.md").write_text(
        '---\ntitle: Evil\nslug: "../../../etc/evil"\ndate: 2026-01-01\ncategories: ["..", "."]\n'
        "---\nbody\n",
        encoding="utf-8",
    )
    with service(tmp_path, posts) as fp:
        fp.build()
    produced = [p.resolve() for p in tmp_path.rglob("*") if p.is_file()]
    out = (tmp_path / "out").resolve()
    others = {tmp_path / "config.toml", tmp_path / "fp.db"}
    for path in produced:
        assert (
            out in path.parents
            or path.parent == (tmp_path / "posts").resolve()
            or (path.name.startswith("fp.db") or path in others)
        ), path


@pytest.mark.postgres
def test_build_on_postgresql(tmp_path: Path, pg_url: str, corpus_dir: Path) -> None:
    with service(tmp_path, corpus_dir / "blog-002", store_url=pg_url) as fp:
        report = fp.build()
        assert report.sync is not None and len(report.sync.added) == 20
        assert fp.build().written == ()
    site = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes())
    assert len(site.entries) == 20


def test_parallel_parse_and_render_match_serial(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service(tmp_path / "serial", corpus_dir / "blog-000") as fp:
        fp.build()
    monkeypatch.setattr("feedpipe.sync.run.PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr("feedpipe.feeds.build.PARALLEL_FEEDS", 1)
    with service(tmp_path / "parallel", corpus_dir / "blog-000") as fp:
        report = fp.build()
    assert report.sync is not None and len(report.sync.added) == 9
    assert snapshot(tmp_path / "parallel" / "out") == snapshot(tmp_path / "serial" / "out")


def test_parallel_archive_pages_match_serial(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archive pages planned for all feeds and rendered in runs on several workers are the
    serial build's bytes, and so is the next (incremental) build after a post leaves."""
    opts = {"max_items": "2", "archive_size": "2", "tags": "true"}
    outputs = []
    for name, threshold in (("serial", 10**6), ("parallel", 1)):
        monkeypatch.setattr("feedpipe.feeds.build.PARALLEL_FEEDS", threshold)
        posts = tmp_path / name / "posts"
        posts.mkdir(parents=True)
        for md in sorted((corpus_dir / "blog-002").glob("*.md")):
            (posts / md.name).write_bytes(md.read_bytes())
        with service(tmp_path / name, posts, **opts) as fp:
            fp.build()
            first = snapshot(tmp_path / name / "out")
            sorted(posts.glob("*.md"))[3].unlink()
            fp.build()
        outputs.append((first, snapshot(tmp_path / name / "out")))
    assert any("/history/" in path for path in outputs[0][0])
    assert outputs[1] == outputs[0]


def test_duplicate_slug_with_different_content_keeps_both_posts(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    post(posts, "same", title="First", body="one")
    (posts / "other.md").write_text(
        "---\ntitle: Second\nslug: same\ndate: 2026-01-02\ncategories: [Rust]\n---\ntwo\n",
        encoding="utf-8",
    )
    with service(tmp_path, posts) as fp:
        report = fp.build()
        again = service(tmp_path / "again", posts)
        with again:
            second = again.build()
    assert report.sync is not None and second.sync is not None
    assert sorted(report.sync.added) == sorted(second.sync.added)  # deterministic
    assert len(report.sync.added) == 2 and "same" in report.sync.added
    assert any("used by another post" in d.reason for d in report.sync.duplicates)
    site = feedparser.parse((tmp_path / "out" / "feed.xml").read_bytes())
    links = {e.title: e.link for e in site.entries}
    assert links["First"] != links["Second"]
    assert len({e.id for e in site.entries}) == 2


def test_a_large_sync_is_applied_in_batches_with_the_same_result(
    tmp_path: Path, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with service(tmp_path / "one", corpus_dir / "blog-003") as fp:
        whole = fp.build()
    monkeypatch.setattr("feedpipe.sync.run.APPLY_BATCH", 4)
    with service(tmp_path / "many", corpus_dir / "blog-003") as fp:
        batched = fp.build()
        assert fp.sync().unchanged == 33
    assert whole.sync is not None and batched.sync is not None
    assert sorted(whole.sync.added) == sorted(batched.sync.added)
    assert snapshot(tmp_path / "one" / "out") == snapshot(tmp_path / "many" / "out")
