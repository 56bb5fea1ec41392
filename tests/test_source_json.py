"""JsonSource: JSON arrays and JSON Lines exports, per-record skips."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedpipe.errors import SourceError
from feedpipe.model import Document, ParsedDocument
from feedpipe.source.jsonfile import JsonSource

SITE = "https://blog.example.com"
JSON = Path(__file__).parent / "fixtures" / "posts" / "json"


def parse(name: str) -> ParsedDocument:
    source = JsonSource(JSON / name, SITE)
    (doc,) = source.scan()
    assert doc.key == name
    return source.parse(doc, source.read(doc))


def test_scan_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"export\.json"):
        JsonSource(tmp_path / "export.json", SITE).scan()


def test_picklable() -> None:
    source = JsonSource(JSON / "posts.json", SITE)
    assert pickle.loads(pickle.dumps(source)) == source


def test_array_entries() -> None:
    parsed = parse("posts.json")
    one, two = parsed.entries
    assert one.key == "posts.json#array-one"
    assert one.doc_key == "posts.json"
    assert one.summary == "See [the docs](https://docs.example.com/) for *details*."  # literal
    assert one.content_html.rstrip() == (
        '<p>Hello <strong>world</strong>. <a href="https://blog.example.com/about/">Relative</a></p>'
    )
    assert "script" not in one.content_html
    assert one.categories == ("Data",)
    assert one.tags == ("json",)
    assert one.published == datetime(2026, 5, 1, 9, tzinfo=UTC)
    assert two.key == "posts.json#array-post-two"
    assert two.published == datetime(2026, 5, 1, 8, tzinfo=UTC)
    assert (
        two.content_html == '<p>Pre-rendered <a href="https://blog.example.com/page/">link</a></p>'
    )
    assert two.summary == "Pre-rendered link"
    assert two.draft is True


def test_array_skips_name_file_index_and_field() -> None:
    skips = {s.key: s.reason for s in parse("posts.json").skips}
    assert skips == {
        "posts.json#[2]": "posts.json [2]: expected an object, got a string",
        "posts.json#[3]": "posts.json [3]: date: missing (every post needs a publication date)",
        "posts.json#[4]": (
            "posts.json [4]: slug: duplicate slug 'array-one' (first used by posts.json [0])"
        ),
    }


def test_json_lines_one_bad_line() -> None:
    parsed = parse("posts.jsonl")
    assert [e.key for e in parsed.entries] == [
        "posts.jsonl#line-post-one",
        "posts.jsonl#line-three",
    ]
    assert parsed.entries[1].published == datetime(2026, 6, 3, 6, 30, tzinfo=UTC)
    skips = {s.key: s.reason for s in parsed.skips}
    assert skips == {
        "posts.jsonl#line 2": ("posts.jsonl line 2: invalid JSON: Expecting value at column 34"),
        "posts.jsonl#line 5": "posts.jsonl line 5: expected an object, got an array",
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("not-json.json", "not-json.json: not JSON or JSON Lines (invalid JSON: Expecting value"),
        ("truncated.json", "truncated.json: not JSON or JSON Lines (invalid JSON:"),
        ("scalar.json", "scalar.json: expected a JSON array of posts or JSON Lines, got a number"),
    ],
)
def test_not_json_is_one_document_skip(name: str, reason: str) -> None:
    parsed = parse(name)
    assert parsed.entries == ()
    (skip,) = parsed.skips
    assert skip.key == name
    assert skip.reason.startswith(reason)


def test_broken_array_is_one_document_skip(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('[{"title": "a", "date": "2026-01-01"},]')
    source = JsonSource(tmp_path / "x.json", SITE)
    (doc,) = source.scan()
    (skip,) = source.parse(doc, source.read(doc)).skips
    assert skip == type(skip)("x.json", "x.json: invalid JSON array: Expecting value at line 1")


def test_single_object_and_latin1(tmp_path: Path) -> None:
    data = '{"title": "Caf\xe9", "date": "2026-01-01", "body": "x"}'.encode("cp1252")
    parsed = JsonSource(tmp_path / "one.json", SITE).parse(Document("one.json", 1, 1), data)
    (entry,) = parsed.entries
    assert entry.title == "Café"
    assert entry.warnings == ("one.json: not UTF-8 (byte 14); decoded as cp1252",)


def test_non_text_body_warns() -> None:
    data = b'[{"title": "T", "date": "2026-01-01", "body": 5, "summary": "s"}]'
    (entry,) = JsonSource(JSON / "x.json", SITE).parse(Document("x.json", 1, 1), data).entries
    assert entry.content_html == ""
    assert entry.warnings == ("x.json [0]: body: expected Markdown text, got a number; ignored",)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.dictionaries(st.sampled_from(["title", "date", "body", "slug", "tags"]),
                                 st.one_of(st.none(), st.integers(), st.text(max_size=20)))).map(
            lambda items: __import__("json").dumps(items).encode()
        ),
    )
)  # fmt: skip
def test_parse_never_raises(data: bytes) -> None:
    parsed = JsonSource(JSON / "f.json", SITE).parse(Document("f.json", 0, 0), data)
    assert all(s.reason.startswith("f.json") for s in parsed.skips)
    assert len({e.key for e in parsed.entries}) == len(parsed.entries)
