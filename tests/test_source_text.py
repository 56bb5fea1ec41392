"""Text fields as written: YAML implicit typing off for names, grapheme-aware cutting, warnings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedpipe.errors import PostError
from feedpipe.model import Entry
from feedpipe.model.text import ELLIPSIS, graphemes, truncate
from feedpipe.source.fields import RawPost, build_entry
from feedpipe.source.frontmatter import split

SITE = "https://blog.example.com"


def front(yaml_text: str) -> dict[str, Any]:
    return split(f"---\n{yaml_text}---\nBody.\n", "p.md")[0]


def build(body: str = "Body.", **meta: Any) -> Entry:
    fields = {"title": "T", "date": "2026-01-02T03:04:05Z", **meta}
    return build_entry(RawPost(doc_key="p.md", label="p.md", meta=fields, body=body), SITE)


@pytest.mark.parametrize(
    ("line", "key", "expected"),
    [
        ("title: 2.50", "title", "2.50"),
        ("slug: 0777", "slug", "0777"),
        ("title: no", "title", "no"),
        ("title: 2024-01-02", "title", "2024-01-02"),
        ("summary: 1e3", "summary", "1e3"),
        ("tags: [no, 1.0, on]", "tags", ["no", "1.0", "on"]),
        ("categories:\n  - 2026\n  - Rust", "categories", ["2026", "Rust"]),
        ("author: {name: 0x10}", "author", {"name": "0x10"}),
        ("image_alt: yes", "image_alt", "yes"),
        ("title: ~", "title", None),
        ("title: '2.50'", "title", "2.50"),
    ],
)
def test_text_fields_keep_their_source_text(line: str, key: str, expected: object) -> None:
    assert front(line + "\n")[key] == expected


def test_other_fields_keep_yaml_types() -> None:
    meta = front("draft: no\nreading_time: 7\ndate: 2026-01-02\n")
    assert meta["draft"] is False
    assert meta["reading_time"] == 7
    assert str(meta["date"]) == "2026-01-02"


def test_yaml_error_names_line_and_column_of_the_problem() -> None:
    with pytest.raises(PostError) as info:
        split("---\ntitle: ok\ntags: [a, b\nslug: x\n---\nBody.\n", "p.md")
    assert "line 4, column 5" in info.value.reason or "line 3" in info.value.reason


def test_unclosed_quote_points_at_the_quote_not_the_end() -> None:
    with pytest.raises(PostError) as info:
        split('---\ntitle: ok\nsummary: "never closed\nslug: x\n---\nBody.\n', "p.md")
    assert "line 3, column 10" in info.value.reason


def test_derived_title_names_its_origin() -> None:
    entry = build(title=None, body="First paragraph here.\n\nSecond.")
    assert entry.warnings == ("p.md: title: missing; derived from the body's first paragraph",)
    entry = build(title=None, description="From the description")
    assert entry.warnings == ("p.md: title: missing; derived from the description",)


def test_updated_before_date_warns() -> None:
    entry = build(updated="2025-12-31T00:00:00Z")
    assert entry.warnings == (
        "p.md: updated: 2025-12-31T00:00:00+00:00 is earlier than the date; kept",
    )


def test_blank_category_names_are_dropped_with_a_warning() -> None:
    entry = build(categories=["Rust", " ", ""], tags=["\t"])
    assert entry.categories == ("Rust",)
    assert entry.tags == ()
    assert entry.warnings == (
        "p.md: categories: blank name ' ' dropped",
        "p.md: categories: blank name '' dropped",
        "p.md: tags: blank name '\\t' dropped",
    )


@pytest.mark.parametrize(
    "text",
    [
        "Flags 🇩🇪🇫🇷🇯🇵🇺🇸🇬🇧",
        "Family 👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦",
        "Marks e\u0301e\u0301e\u0301e\u0301e\u0301e\u0301",
        "Skin 👍🏽👍🏽👍🏽👍🏽👍🏽",
    ],
)
def test_truncate_never_splits_a_grapheme(text: str) -> None:
    for limit in range(2, len(text)):
        cut = truncate(text, limit, words=False)
        assert len(cut) <= limit
        kept = cut.removesuffix(ELLIPSIS)
        assert graphemes(text)[: len(graphemes(kept))] == graphemes(kept)
        assert not kept.endswith("\u200d")


@given(st.text(), st.integers(min_value=2, max_value=80))
def test_truncate_is_a_prefix_of_whole_clusters(text: str, limit: int) -> None:
    cut = truncate(text, limit)
    if len(text) <= limit:
        assert cut == text
        return
    assert len(cut) <= limit and cut.endswith(ELLIPSIS)
    kept = cut.removesuffix(ELLIPSIS)
    assert text.startswith(kept)
    assert "".join(graphemes(text)[: len(graphemes(kept))]) == kept
