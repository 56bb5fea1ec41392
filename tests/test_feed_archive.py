"""RFC 5005 archived feeds: every post reachable exactly once, full pages never rewritten."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from lxml import etree

from feedpipe.feeds.archive import layout
from feedpipe.feeds.page import PAGE_NAME
from feedpipe.web.feedfiles import FeedFiles
from tests.helpers import SITE_URL, post, write_post
from tests.test_build import SCHEMAS, service, snapshot
from tests.test_web_helpers import raw_request

FH = "http://purl.org/syndication/history/1.0"


@given(
    n=st.integers(0, 400),
    max_items=st.integers(1, 60),
    size=st.integers(1, 60),
    added=st.integers(1, 80),
)
def test_layout_holds_every_post_once_and_new_posts_never_touch_full_pages(
    n: int, max_items: int, size: int, added: int
) -> None:
    ids = list(range(n, 0, -1))  # newest first
    lay = layout(ids, max_items, size)
    flat = list(lay.current) + [i for page in reversed(lay.pages) for i in page]
    assert flat == ids
    assert all(len(p) == size for p in lay.pages[:-1]) and all(len(p) <= size for p in lay.pages)
    if lay.pages:
        assert len(lay.pages[-1]) < size  # a full newest page gets an empty successor
    later = layout(list(range(n + added, 0, -1)), max_items, size)
    for number, page in enumerate(lay.pages, start=1):
        if len(page) == size:
            assert later.pages[number - 1] == page
            assert later.paging(number) == lay.paging(number)  # links too: bytes unchanged


def _file(out: Path, url: str) -> Path:
    assert url.startswith(SITE_URL + "/"), url
    return out / url.removeprefix(SITE_URL + "/")


def _walk(out: Path, start: str) -> tuple[list[str], list[Path]]:
    """Follow prev-archive (RSS/Atom) from a subscription document: ids seen, documents read."""
    ids: list[str] = []
    docs: list[Path] = []
    url: str | None = SITE_URL + "/" + start
    while url:
        path = _file(out, url)
        docs.append(path)
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        ids += [e.id for e in parsed.entries]
        links = {ln.rel: ln.href for ln in parsed.feed.get("links", [])}
        if len(docs) > 1:
            assert links["current"] == SITE_URL + "/" + start
            assert etree.parse(str(path)).find(f".//{{{FH}}}archive") is not None
        url = links.get("prev-archive")
        assert len(docs) < 10_000
    return ids, docs


def _walk_json(out: Path, start: str) -> list[str]:
    ids: list[str] = []
    url: str | None = SITE_URL + "/" + start
    while url:
        doc = json.loads(_file(out, url).read_bytes())
        assert doc["feed_url"] == SITE_URL + "/" + start
        ids += [i["id"] for i in doc["items"]]
        url = doc.get("next_url")
    return ids


def _check_all_documents(files: dict[str, bytes]) -> int:
    atom_schema = etree.RelaxNG(etree.parse(str(SCHEMAS / "atom.rng")))
    schema = json.loads((SCHEMAS / "jsonfeed-1.1.schema.json").read_text("utf-8"))
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    archives = 0
    for path, data in files.items():
        if path.endswith((".xml",)) and path != "feeds.opml":
            assert not feedparser.parse(data).bozo, path
        if path.rsplit("/", 1)[-1].startswith("atom"):
            assert atom_schema.validate(etree.fromstring(data)), (path, atom_schema.error_log)
        elif path.endswith(".json"):
            validator.validate(json.loads(data))
        archives += "history/" in path
    return archives


@pytest.mark.parametrize("blog", ["blog-000", "blog-001", "blog-002", "blog-003", "blog-004"])
def test_walking_the_archive_of_every_corpus_feed_finds_every_post_once(
    tmp_path: Path, corpus_dir: Path, blog: str
) -> None:
    with service(tmp_path, corpus_dir / blog, max_items="3", archive_size="4") as fp:
        fp.build()
        files = snapshot(tmp_path / "out")
        assert fp.build(full=True).written == ()  # archives too are byte-identical on rebuild
    assert snapshot(tmp_path / "out") == files
    out = tmp_path / "out"
    published = len(list((corpus_dir / blog).glob("*.md"))) - (blog == "blog-003")
    feeds = [k for k in files if k.endswith("feed.xml") and "history/" not in k]
    for rss in feeds:
        folder = rss.removesuffix("feed.xml")
        every = [e.id for e in feedparser.parse(files[rss]).entries]
        rss_ids, _ = _walk(out, rss)
        atom_ids, _ = _walk(out, folder + "atom.xml")
        json_ids = _walk_json(out, folder + "feed.json")
        assert len(set(rss_ids)) == len(rss_ids) and rss_ids == atom_ids == json_ids
        assert rss_ids[: len(every)] == every
        if rss == "feed.xml":
            assert len(rss_ids) == published
    assert _check_all_documents(files) > 0


def _history(written: tuple[str, ...]) -> set[str]:
    return {p for p in written if "/history/" in "/" + p}


@pytest.mark.slow
def test_five_thousand_posts_walk_and_incremental_archive(tmp_path: Path) -> None:
    posts = tmp_path / "posts"
    posts.mkdir()
    start = datetime(2012, 1, 1, 9, tzinfo=UTC)
    for i in range(5000):  # p0000 is the oldest; every post is in Rust, every third in Go
        day = (start + timedelta(hours=7 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        write_post(posts, f"p{i:04d}", day, "[Go, Rust]" if i % 3 == 0 else "[Rust]")
    out = tmp_path / "out"
    with service(tmp_path, posts) as fp:
        fp.build()
        ids, docs = _walk(out, "feed.xml")
        assert len(ids) == len(set(ids)) == 5000
        print(f"\nsite feed: {len(ids)} posts in {len(docs)} documents (5,000 published)")
        go_ids, go_docs = _walk(out, "category/go/feed.xml")
        assert len(go_ids) == len(set(go_ids)) == 1667
        print(f"category go: {len(go_ids)} posts in {len(go_docs)} documents (1,667 published)")
        assert docs[1].name == "feed-99.xml"  # 4,950 archived: 99 full pages (and an empty 100)
        full = {p: p.read_bytes() for p in docs[1:] + go_docs[2:]}

        post(posts, "fresh", categories="[Go]", date="2026-11-20T00:00:00Z")
        report = fp.build()
        history = _history(report.written)
        assert set(report.written) - history == {
            f"{d}{n}" for d in ("", "category/go/") for n in CURRENT
        }
        assert history == {
            f"{d}history/{s}-{n}{e}"
            for d, n in (("", 100), ("category/go/", 33))
            for s, e in (("feed", ".xml"), ("atom", ".xml"), ("feed", ".json"))
        }
        assert all(p.read_bytes() == data for p, data in full.items())
        ids, _ = _walk(out, "feed.xml")
        assert len(ids) == len(set(ids)) == 5001

        old = posts / "p0010.md"  # an old post, on page 1 of the site and of Rust
        old.write_text(old.read_text("utf-8").replace("Body of", "Edited body of"), "utf-8")
        report = fp.build()
    assert set(report.written) == {
        f"{d}history/{s}-1{e}"
        for d in ("", "category/rust/")
        for s, e in (("feed", ".xml"), ("atom", ".xml"), ("feed", ".json"))
    }


CURRENT = ("feed.xml", "atom.xml", "feed.json", PAGE_NAME)


def test_full_archive_pages_are_served_immutable(tmp_path: Path, corpus_dir: Path) -> None:
    with service(tmp_path, corpus_dir / "blog-002", max_items="3", archive_size="4") as fp:
        fp.build()
    files = FeedFiles(tmp_path / "out")
    pages = sorted((tmp_path / "out" / "history").glob("feed-*.xml"), key=lambda p: len(p.name))
    newest = max(pages, key=lambda p: int(p.stem.split("-")[1]))
    for page in pages:
        status, headers, body = raw_request(files, f"/history/{page.name}")
        assert status == 200 and body == page.read_bytes()
        immutable = b"public, max-age=31536000, immutable"
        assert (headers[b"cache-control"] == immutable) is (page != newest), page.name
    # a browser opening an archive page gets the XML: pages are for subscription documents
    nav = [
        (b"accept", b"text/html"),
        (b"sec-fetch-dest", b"document"),
        (b"sec-fetch-mode", b"navigate"),
    ]
    _, headers, _ = raw_request(files, f"/history/{newest.name}", headers=nav)
    assert headers[b"content-type"].startswith(b"application/rss+xml")


def test_full_pages_never_change_as_posts_arrive_and_an_edit_touches_one_page(
    tmp_path: Path,
) -> None:
    posts = tmp_path / "posts"
    posts.mkdir()
    start = datetime(2025, 1, 1, 9, tzinfo=UTC)

    def add(i: int) -> None:
        day = (start + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        write_post(posts, f"p{i:02d}", day, "[Rust]")

    for i in range(12):
        add(i)
    out = tmp_path / "out"
    with service(tmp_path, posts, max_items="3", archive_size="4") as fp:
        fp.build()
        for i in range(12, 22):  # one new newest post per build
            pages = sorted((out / "history").glob("*"))
            full = {
                p.name: p.read_bytes()
                for p in pages
                if (out / "history" / _successor(p.name)).is_file()
            }
            add(i)
            written = _history(fp.build().written)
            assert all((out / "history" / n).read_bytes() == b for n, b in full.items())
            assert not {w.rsplit("/", 1)[-1] for w in written} & set(full), i
            numbers = {int(w.rsplit("-", 1)[1].split(".")[0]) for w in written}
            assert len(numbers) <= 2 and all(n >= max(numbers, default=0) - 1 for n in numbers)
        old = posts / "p01.md"  # on page 1 of the site and of Rust
        old.write_text(old.read_text("utf-8").replace("Body of", "Edited body of"), "utf-8")
        report = fp.build()
    assert set(report.written) == {
        f"{d}history/{s}-1{e}"
        for d in ("", "category/rust/")
        for s, e in (("feed", ".xml"), ("atom", ".xml"), ("feed", ".json"))
    }


def _successor(name: str) -> str:
    stem, ext = name.rsplit(".", 1)
    base, number = stem.rsplit("-", 1)
    return f"{base}-{int(number) + 1}.{ext}"
