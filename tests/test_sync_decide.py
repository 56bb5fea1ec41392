"""The pure sync decider: identity, duplicates, removal and restore."""

from __future__ import annotations

from datetime import UTC, datetime

from feedpipe.model import Document, Entry, EntryLink, ParsedDocument, PostRef
from feedpipe.sync.decide import decide, split_by_stat

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def entry(key: str, slug: str, content: str = "a") -> Entry:
    return Entry(
        key=key,
        doc_key=key,
        title=slug,
        slug=slug,
        published=WHEN,
        updated=None,
        summary="s",
        content_html="<p>x</p>",
        categories=(),
        tags=(),
        content_hash=content,
    )


def parsed(*entries: Entry) -> list[ParsedDocument]:
    return [ParsedDocument(Document(e.key, 1, 1), "sha-" + e.key, (e,)) for e in entries]


def docs(*keys: str) -> list[Document]:
    return [Document(k, 1, 1) for k in keys]


def test_new_posts_are_added_in_key_order() -> None:
    changes, report = decide(parsed(entry("b.md", "b"), entry("a.md", "a")), [], {}, {})
    assert report.added == ("a", "b")
    assert [w.post_id for w in changes.posts_write] == [None, None]


def test_same_content_in_two_files_is_one_post() -> None:
    changes, report = decide(parsed(entry("x.md", "s", "h"), entry("y.md", "s", "h")), [], {}, {})
    assert report.added == ("s",)
    assert [link.slug for link in changes.links_upsert] == ["s", "s"]
    assert len(report.duplicates) == 1 and "same post" in report.duplicates[0].reason


def test_duplicate_slug_with_other_content_gets_a_distinct_deterministic_slug() -> None:
    both = parsed(entry("x.md", "s", "h1"), entry("y.md", "s", "h2"))
    _, first = decide(both, [], {}, {})
    _, again = decide(both, [], {}, {})
    assert first.added[0] == "s"
    assert first.added[1].startswith("s-") and first.added[1] == again.added[1]
    assert "used by another post" in first.duplicates[0].reason


def test_unchanged_doc_keeps_its_slug_against_a_new_conflicting_file() -> None:
    links = {"x.md": EntryLink("x.md", 7, "h1")}
    refs = {"s": PostRef(7, "s", "h1", False)}
    changes, report = decide(parsed(entry("y.md", "s", "h2")), [], links, refs)
    assert report.added[0].startswith("s-")
    assert not changes.posts_remove


def test_vanished_file_soft_removes_its_post_and_return_restores_it() -> None:
    links = {"x.md": EntryLink("x.md", 7, "h1")}
    refs = {"s": PostRef(7, "s", "h1", False)}
    gone, gone_report = decide([], ["x.md"], links, refs)
    assert [r.slug for r in gone.posts_remove] == ["s"] and gone_report.removed == ("s",)
    assert gone.docs_delete == ["x.md"] and gone.links_delete == ["x.md"]
    removed = {"s": PostRef(7, "s", "h1", True)}
    back, back_report = decide(parsed(entry("x.md", "s", "h1")), [], {}, removed)
    assert back_report.added == ("s",) and back.posts_write[0].post_id == 7


def test_changed_content_updates_and_same_content_is_unchanged() -> None:
    links = {"x.md": EntryLink("x.md", 7, "h1")}
    refs = {"s": PostRef(7, "s", "h1", False)}
    _, same = decide(parsed(entry("x.md", "s", "h1")), [], links, refs)
    assert (same.added, same.updated, same.unchanged) == ((), (), 1)
    _, other = decide(parsed(entry("x.md", "s", "h2")), [], links, refs)
    assert other.updated == ("s",)


def test_split_by_stat() -> None:
    known = {"a": (1, 1), "b": (1, 1)}
    same, other = split_by_stat(
        [Document("a", 1, 1), Document("b", 2, 1), Document("c", 1, 1)], known
    )
    assert [d.key for d in same] == ["a"] and [d.key for d in other] == ["b", "c"]
