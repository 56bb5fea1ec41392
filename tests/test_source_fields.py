"""Shared field coercion, HTML sanitising and text helpers used by every source."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from feedpipe.errors import PostError
from feedpipe.model import Entry
from feedpipe.model.text import clean_line, truncate
from feedpipe.source.fields import RawPost, build_entry, content_hash, is_safe_slug, parse_instant
from feedpipe.source.html import render_inline_markdown, render_markdown, sanitize
from feedpipe.source.text import decode

SITE = "https://blog.example.com"


def build(body: str = "Body.", **meta: Any) -> Entry:
    fields = {"title": "T", "date": "2026-01-02T03:04:05Z", **meta}
    return build_entry(RawPost(doc_key="p.md", label="p.md", meta=fields, body=body), SITE)


def failure(**meta: Any) -> str:
    with pytest.raises(PostError) as info:
        build(**meta)
    assert info.value.key == "p.md"
    return info.value.reason


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (
            datetime(2026, 1, 2, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2026, 1, 2, 3, 30, tzinfo=UTC),
        ),
        (date(2026, 1, 2), datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02 03:04:05+05:30", datetime(2026, 1, 1, 21, 34, 5, tzinfo=UTC)),
        ("Fri, 02 Jan 2026 03:04:05 -0500", datetime(2026, 1, 2, 8, 4, 5, tzinfo=UTC)),
        ("Fri, 02 Jan 2026 03:04:05 GMT", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("  2026-01-02T03:04:05Z  ", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_parse_instant_gives_aware_utc(value: object, expected: datetime) -> None:
    parsed = parse_instant(value)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value", ["", "soon", "2026-02-30", 0, 1700000000, 1.5, True, None, [], {}]
)
def test_parse_instant_rejects_without_inventing_a_date(value: object) -> None:
    assert parse_instant(value) is None


def test_missing_or_bad_date_is_an_error_naming_the_value() -> None:
    assert failure(date=None) == "p.md: date: missing (every post needs a publication date)"
    assert failure(date=0) == "p.md: date: cannot parse 0 as a date"
    assert failure(date="1970?") == "p.md: date: cannot parse '1970?' as a date"


def test_published_alias_and_updated() -> None:
    fields = {"title": "T", "published": "2026-01-02"}
    entry = build_entry(RawPost("p.md", "p.md", fields), SITE)
    assert entry.published == datetime(2026, 1, 2, tzinfo=UTC)
    assert build(updated="2026-02-01T00:00:00+01:00").updated == datetime(
        2026, 1, 31, 23, tzinfo=UTC
    )


# --- title, summary, slug ----------------------------------------------------------------------


def test_title_derived_from_summary_at_word_boundary() -> None:
    summary = "word " * 40
    entry = build(title=None, summary=summary)
    assert entry.title == ("word " * 17).strip() + "…"
    assert len(entry.title) <= 90
    assert entry.warnings == ("p.md: title: missing; derived from the summary",)


def test_numeric_title_is_text() -> None:
    assert build(title=2026).title == "2026"


def test_summary_is_literal_text() -> None:
    """The default summary_format is "text": nothing is parsed, decoded or dropped."""
    entry = build(summary="Use [nh3](https://x.example/) with **care** & <em>joy</em>\r\nnow")
    assert entry.summary == "Use [nh3](https://x.example/) with **care** & <em>joy</em> now"
    assert entry.summary_html is None
    assert build(description="From *description*").summary == "From *description*"
    assert build(summary="Compare <T> and <U>").summary == "Compare <T> and <U>"
    assert build(summary="&lt;script&gt; &amp;").summary == "&lt;script&gt; &amp;"


def test_summary_script_text_kept_as_text() -> None:
    assert build(summary="Hi <script>alert(1)</script>there").summary == (
        "Hi <script>alert(1)</script>there"
    )


def build_markdown_summary(summary: str) -> Entry:
    fields = {"title": "T", "date": "2026-01-02T03:04:05Z", "summary": summary}
    raw = RawPost("p.md", "p.md", fields, body="Body.", summary_format="markdown")
    return build_entry(raw, SITE)


def test_markdown_summary_has_html_and_text() -> None:
    entry = build_markdown_summary("Use [nh3](/nh3) with **care** & <em>joy</em>\r\nnow")
    assert entry.summary == "Use nh3 with care & joy now"
    assert entry.summary_html == (
        'Use <a href="https://blog.example.com/nh3">nh3</a> with <strong>care</strong>'
        " &amp; <em>joy</em> now"
    )


def test_markdown_summary_script_dropped() -> None:
    entry = build_markdown_summary("Hi <script>alert(1)</script>there")
    assert entry.summary == "Hi there"
    assert entry.summary_html is not None and "<script" not in entry.summary_html


def test_html_summary_of_a_feed_file_becomes_text() -> None:
    fields = {"title": "T", "date": "2026-01-02", "summary": "<p>Tom &amp; <b>Jerry</b></p>"}
    raw = RawPost("f.xml", "f.xml item 0", fields, html="<p>x</p>", summary_format="html")
    entry = build_entry(raw, SITE)
    assert entry.summary == "Tom & Jerry"
    assert entry.summary_html is None


def test_summary_html_absent_keeps_the_content_hash() -> None:
    """Posts stored before summary_html existed keep their hash (no mass update)."""
    entry = build(summary="s")
    visible = {
        f.name: getattr(entry, f.name)
        for f in dataclasses.fields(entry)
        if f.name not in {"key", "doc_key", "content_hash", "warnings", "summary_html"}
    }
    assert content_hash(entry) == content_hash(dataclasses.replace(entry, summary_html=None))
    assert "summary_html" not in visible and content_hash(entry) != content_hash(
        dataclasses.replace(entry, summary_html="<b>s</b>")
    )


def test_summary_from_first_paragraph_capped() -> None:
    body = "# Heading\n\n" + "Long sentence goes on. " * 30 + "\n\nSecond paragraph."
    entry = build(body=body)
    assert entry.summary.startswith("Long sentence goes on. Long")
    assert entry.summary.endswith("…")
    assert len(entry.summary) <= 300


@pytest.mark.parametrize(
    ("slug", "expected", "warned"),
    [
        ("fine-slug_1.2", "fine-slug_1.2", False),
        ("../../etc/passwd", "etc-passwd", True),
        ("a/b", "a-b", True),
        ("a\\b", "a-b", True),
        (".hidden", "hidden", True),
        ("x..y", "x-y", True),
        ("Ünïcode Slug", "unicode-slug", True),
        (2024, "2024", False),
    ],
)
def test_slug_safety(slug: object, expected: str, warned: bool) -> None:
    entry = build(slug=slug)
    assert entry.slug == expected
    assert is_safe_slug(entry.slug)
    assert bool(entry.warnings) is warned


def test_slug_falls_back_to_title_then_hash() -> None:
    assert build(title="Hello, World!").slug == "hello-world"
    assert build(title="!!!", slug="..").slug.startswith("post-")


def test_keyed_entry_key_uses_slug() -> None:
    raw = RawPost(
        "export.json", "export.json [0]", {"title": "A B", "date": "2026-01-01"}, keyed=True
    )
    entry = build_entry(raw, SITE)
    assert (entry.key, entry.doc_key, entry.slug) == ("export.json#a-b", "export.json", "a-b")


# --- other fields --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "draft"),
    [(True, True), (False, False), ("TRUE", True), ("No", False), ("1", True), ("0", False),
     (1, True), (0, False), ("false", False), (None, False)],
)  # fmt: skip
def test_draft_values(value: object, draft: bool) -> None:
    assert build(draft=value).draft is draft


def test_categories_and_tags() -> None:
    entry = build(categories=["Go", " go ", "AI/ML", "Multi\nLine"], category="Rust", tags="one")
    assert entry.categories == ("Go", "AI/ML", "Multi Line", "Rust")
    assert entry.tags == ("one",)
    assert build(categories=None).categories == ()


def test_bad_categories_type_warns() -> None:
    entry = build(categories={"a": 1})
    assert entry.categories == ()
    assert entry.warnings == ("p.md: categories: expected a list or text, got dict; ignored",)


def test_urls_made_absolute() -> None:
    entry = build(image="img/a.png", url="/posts/p/", image_alt="An\nimage")
    assert entry.image == "https://blog.example.com/img/a.png"
    assert entry.url == "https://blog.example.com/posts/p/"
    assert entry.image_alt == "An image"
    assert build(image="https://cdn.example.com/a.png").image == "https://cdn.example.com/a.png"


@pytest.mark.parametrize(("value", "minutes"), [(5, 5), ("12", 12), (" 3 ", 3), (4.0, 4)])
def test_reading_time(value: object, minutes: int) -> None:
    assert build(reading_time=value).reading_time == minutes


@pytest.mark.parametrize("value", ["ten", -1, 2.5, True, "5 min"])
def test_bad_reading_time_warns(value: object) -> None:
    entry = build(reading_time=value)
    assert entry.reading_time is None
    assert entry.warnings[0].startswith("p.md: reading_time: expected minutes")


def test_author_text_or_mapping() -> None:
    assert build(author="Ann").author == "Ann"
    assert build(author={"name": "Bo"}).author == "Bo"


# --- content hash --------------------------------------------------------------------------------


def test_content_hash_covers_reader_visible_fields_only() -> None:
    entry = build()
    assert entry.content_hash == content_hash(entry)
    moved = dataclasses.replace(entry, key="other.md", doc_key="other.md", warnings=("w",))
    assert content_hash(moved) == entry.content_hash
    changes: list[dict[str, Any]] = [
        {"title": "U"},
        {"draft": True},
        {"tags": ("x",)},
        {"updated": entry.published},
    ]
    for change in changes:
        assert content_hash(dataclasses.replace(entry, **change)) != entry.content_hash


def test_content_hash_is_stable() -> None:
    assert build().content_hash == build().content_hash


# --- HTML ------------------------------------------------------------------------------------


def test_render_markdown_sanitises_and_absolutises() -> None:
    html = render_markdown(
        '<p onclick="x()">Hi</p>\n\n[a](page/) ![i](/i.png "t") <a href="data:text/html,x">d</a>'
        ' <a href="mailto:me@example.com">m</a> <a href="#fn1">f</a>',
        SITE,
    )
    assert html == (
        "<p>Hi</p>\n"
        '<p><a href="https://blog.example.com/page/">a</a> '
        '<img src="https://blog.example.com/i.png" alt="i" title="t"> <a>d</a>'
        ' <a href="mailto:me@example.com">m</a> <a href="#fn1">f</a></p>\n'
    )


def test_fenced_script_is_escaped_code() -> None:
    html = render_markdown("```html\n<script>alert(1)</script>\n```\n", SITE)
    assert html == (
        '<pre><code class="language-html">&lt;script&gt;alert(1)&lt;/script&gt;\n</code></pre>\n'
    )


def test_sanitize_keeps_allowed_structure() -> None:
    source = (
        "<figure><img src='a.png' alt='A'><figcaption>Cap</figcaption></figure>"
        "<table><tr><td colspan='2'>x</td></tr></table><sup>1</sup><iframe src='x'></iframe>"
        "<style>p{}</style><object data='x'></object>"
    )
    assert sanitize(source, SITE) == (
        '<figure><img src="https://blog.example.com/a.png" alt="A"><figcaption>Cap</figcaption>'
        '</figure><table><tbody><tr><td colspan="2">x</td></tr></tbody></table><sup>1</sup>'
    )


def test_render_inline_markdown() -> None:
    assert render_inline_markdown("[FFmpeg.wasm](https://x/) — *fast*", SITE) == (
        '<a href="https://x/">FFmpeg.wasm</a> — <em>fast</em>'
    )
    assert render_inline_markdown('5 < 6 && "x"', SITE) == '5 &lt; 6 &amp;&amp; "x"'
    assert render_inline_markdown("plain", SITE) == "plain"


# --- text helpers ----------------------------------------------------------------------------


def test_decode_variants() -> None:
    assert decode("\ufeffa\r\nb\rc".encode()) == ("a\nb\nc", None)
    text, warning = decode(b"caf\xe9 \x80")
    assert text == "café €"
    assert warning == "not UTF-8 (byte 3); decoded as cp1252"
    assert decode(b"\x81\xe9")[0] == "\x81é"  # undefined in cp1252: Latin-1 as last resort


def test_clean_line_and_truncate() -> None:
    assert clean_line(" a\x00b\r\n\tc\x7f ") == "ab c"
    assert truncate("short", 10) == "short"
    assert truncate("alpha beta gamma delta", 12) == "alpha beta…"
    assert truncate("x" * 20, 10) == "x" * 9 + "…"
