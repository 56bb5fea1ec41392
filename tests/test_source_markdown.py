"""MarkdownSource: scanning, front matter oddities, decoding, and the shared corpus."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.errors import SourceError
from feedpipe.model import Document, Entry, ParsedDocument
from feedpipe.settings import settings_from_mapping
from feedpipe.source import open_source
from feedpipe.source.feedfile import FeedFileSource
from feedpipe.source.jsonfile import JsonSource
from feedpipe.source.markdown import MarkdownSource

SITE = "https://blog.example.com"
BAD = Path(__file__).parent / "fixtures" / "posts" / "bad"


def parse(name: str) -> ParsedDocument:
    source = MarkdownSource(BAD, SITE)
    doc = next(d for d in source.scan() if d.key == name)
    return source.parse(doc, source.read(doc))


def entry(name: str) -> Entry:
    parsed = parse(name)
    assert parsed.skips == ()
    (only,) = parsed.entries
    return only


def skip_reason(name: str) -> str:
    parsed = parse(name)
    assert parsed.entries == ()
    (skip,) = parsed.skips
    assert skip.key == name
    return skip.reason


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --- scan / read ---------------------------------------------------------------------------


def test_scan_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["b.md", "a/z.markdown", "a/y.MD", ".hidden.md", ".git/x.md", "a/.d/q.md", "n.txt"]:
        write(tmp_path / rel, "x")
    docs = MarkdownSource(tmp_path, SITE).scan()
    assert [d.key for d in docs] == ["a/y.MD", "a/z.markdown", "b.md"]
    assert docs[-1].size == 1
    assert docs[-1].mtime_ns == (tmp_path / "b.md").stat().st_mtime_ns


def test_scan_missing_root_names_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="nope"):
        MarkdownSource(tmp_path / "nope", SITE).scan()


def test_read_vanished_file_is_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"gone\.md"):
        MarkdownSource(tmp_path, SITE).read(Document("gone.md", 1, 1))


def test_source_is_frozen_and_picklable() -> None:
    source = MarkdownSource(BAD, SITE)
    assert pickle.loads(pickle.dumps(source)) == source
    with pytest.raises(AttributeError):
        source.root = Path()  # type: ignore[misc]


def test_parse_records_sha256_of_bytes() -> None:
    import hashlib

    parsed = parse("date-only.md")
    assert parsed.sha256 == hashlib.sha256((BAD / "date-only.md").read_bytes()).hexdigest()


# --- front matter ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("no-front-matter.md", "no-front-matter.md: no front matter"),
        ("empty.md", "empty.md: empty file"),
        ("unclosed.md", "unclosed.md: front matter never closed"),
        ("not-a-mapping.md", "not-a-mapping.md: front matter is a list, not a mapping"),
        ("malformed-yaml.md", "malformed-yaml.md: malformed YAML front matter: line "),
    ],
)
def test_unusable_front_matter_is_one_skip(name: str, expected: str) -> None:
    assert skip_reason(name).startswith(expected)


def test_malformed_yaml_names_the_line() -> None:
    assert skip_reason("malformed-yaml.md") == (
        "malformed-yaml.md: malformed YAML front matter: "
        "line 3, column 14: mapping values are not allowed in this context"
    )


def test_tla_module_and_rule_lines_stay_in_body() -> None:
    post = entry("tla-module.md")
    assert post.title == "TLA+ Counter"
    assert "---- MODULE Counter ----" in post.content_html
    assert "<hr>" in post.content_html
    assert post.content_html.endswith("<p>After the code.</p>\n")


def test_front_matter_only_at_very_top(tmp_path: Path) -> None:
    write(tmp_path / "late.md", "\n---\ntitle: x\ndate: 2026-01-01\n---\nbody\n")
    source = MarkdownSource(tmp_path, SITE)
    (doc,) = source.scan()
    (skip,) = source.parse(doc, source.read(doc)).skips
    assert "no front matter" in skip.reason


# --- decoding --------------------------------------------------------------------------------


def test_latin1_file_falls_back_to_cp1252_with_warning() -> None:
    post = entry("latin1.md")
    assert post.title == "Café naïve “quotes”"
    assert post.summary == "Résumé"
    assert "Café body." in post.content_html
    assert any("latin1.md: not UTF-8" in w and "cp1252" in w for w in post.warnings)


def test_bom_is_stripped() -> None:
    post = entry("bom.md")
    assert post.title == "BOM Post"
    assert post.warnings == ()


def test_crlf_becomes_lf() -> None:
    post = entry("crlf.md")
    assert post.title == "CRLF Post"
    assert post.content_html == "<p>Line one.</p>\n<p>Line two.</p>\n"
    assert "\r" not in post.content_html


# --- fields through the Markdown source ------------------------------------------------------


def test_dates_are_utc() -> None:
    assert entry("naive-date.md").published == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert entry("date-only.md").published == datetime(2026, 3, 4, tzinfo=UTC)
    offset = entry("offset-0530.md")
    assert offset.published == datetime(2026, 3, 4, 4, 30, tzinfo=UTC)
    assert offset.published.tzinfo is UTC
    assert offset.updated == datetime(2026, 3, 4, 11, 0, tzinfo=UTC)


def test_future_date_is_kept_as_written() -> None:
    assert entry("future.md").published == datetime(2099, 12, 31, 23, 59, tzinfo=UTC)


def test_missing_and_bad_dates_skip_naming_file_and_value() -> None:
    assert skip_reason("no-date.md") == (
        "no-date.md: date: missing (every post needs a publication date)"
    )
    assert skip_reason("bad-date.md") == "bad-date.md: date: cannot parse 'next Tuesday' as a date"


def test_impossible_yaml_timestamp_is_a_bad_date(tmp_path: Path) -> None:
    write(tmp_path / "p.md", "---\ntitle: t\ndate: 2026-13-45\n---\nb\n")
    source = MarkdownSource(tmp_path, SITE)
    (doc,) = source.scan()
    (skip,) = source.parse(doc, source.read(doc)).skips
    assert skip.reason == "p.md: date: cannot parse '2026-13-45' as a date"


def test_draft_flags() -> None:
    assert entry("draft-true.md").draft is True
    assert entry("draft-false-string.md").draft is False


def test_missing_title_derived_from_summary_with_warning() -> None:
    post = entry("no-title.md")
    assert post.title == (
        "Observability for queue consumers: what to measure, which alerts matter, and how to read…"
    )
    assert len(post.title) <= 90
    assert post.warnings == ("no-title.md: title: missing; derived from the summary",)


def test_empty_title_derived_from_body_paragraph() -> None:
    post = entry("empty-title.md")
    first = "The first paragraph of the body becomes the summary, and the title comes from it."
    assert post.summary == first
    assert post.title == first
    assert post.warnings == (
        "empty-title.md: title: empty (''); derived from the body's first paragraph",
    )


def test_no_title_and_nothing_to_derive_from_is_skipped() -> None:
    assert skip_reason("no-title-no-summary.md").startswith(
        "no-title-no-summary.md: title: missing"
    )


def test_cdata_and_control_characters() -> None:
    post = entry("cdata-and-control.md")
    assert post.title == "CDATA ]]> and control"
    assert post.summary == "Ends ]]> here"
    assert post.content_html == "<p>Body with ]]&gt; and a  control  and\ttab.</p>\n"


def test_html_in_title_is_kept_as_text() -> None:
    post = entry("html-in-title.md")
    assert post.title == '5 < 6 && "x"'
    assert post.summary == '<b>Bold</b> claim: 5 < 6 && "x".'  # plain text: literal


def test_crlf_in_title_and_summary_become_spaces() -> None:
    post = entry("crlf-in-title.md")
    assert post.title == "First line Second line"
    assert post.summary == "Sum mary"


def test_traversal_slug_is_reslugified_with_warning() -> None:
    post = entry("traversal-slug.md")
    assert post.slug == "etc-passwd"
    assert post.key == "traversal-slug.md"
    assert post.categories == ("../x", "Go")  # a display name; term slugs are made by terms.py
    assert post.warnings == ("traversal-slug.md: slug: unsafe slug '../../etc/passwd' replaced",)


def test_single_string_category_and_tag() -> None:
    post = entry("category-string.md")
    assert post.categories == ("AI/ML",)
    assert post.tags == ("python",)
    assert post.slug == "category-string"


def test_hostile_body_is_sanitised_and_links_absolute() -> None:
    post = entry("xss.md")
    html = post.content_html
    for bad in ("<script", "<iframe", "onerror", 'href="javascript:', 'href="data:'):
        assert bad not in html
    assert "[js](javascript:alert(1))" in html  # markdown-it refuses the link; text stays inert
    assert '<img src="https://blog.example.com/x.png">' in html
    assert '<a href="https://blog.example.com/other/">rel</a>' in html
    assert '<a href="#top">frag</a>' in html
    assert "<table>" in html and "<td>1</td>" in html
    assert post.image == "https://blog.example.com/img/cover.png"
    assert post.url == "https://blog.example.com/posts/hostile/"
    assert post.reading_time == 7
    assert post.author == "Eve"


def test_odd_fields_warn_and_fall_back() -> None:
    post = entry("odd-fields.md")
    assert post.updated is None
    assert post.reading_time is None
    assert post.draft is True
    assert post.image is None
    assert post.categories == ("Go", "42")
    assert post.warnings == (
        "odd-fields.md: updated: cannot parse 'whenever' as a date; ignored",
        "odd-fields.md: categories: {'x': 1} is not a name; ignored",
        "odd-fields.md: draft: cannot read 'maybe' as true/false; treated as a draft",
        "odd-fields.md: image: 'javascript:alert(1)' is not an http(s) URL; ignored",
        "odd-fields.md: reading_time: expected minutes as a whole number, got 'ten'",
    )


def test_big_body_parses_fast(tmp_path: Path) -> None:

    chunk = (
        "## A heading\n\n"
        + "Ordinary prose with *some emphasis* and a [link](/posts/x/) in it. " * 6
        + "\n\n- a list item\n- another `code` item\n\n```python\nprint('code')\n```\n\n"
        + "Plain closing paragraph of the section, long enough to be realistic prose. " * 8
        + "\n\n"
    )
    body = chunk * (2_000_000 // len(chunk))
    write(tmp_path / "big-body.md", f"---\ntitle: Big\ndate: 2026-01-01\n---\n{body}")
    source = MarkdownSource(tmp_path, SITE)
    (doc,) = source.scan()
    data = source.read(doc)
    assert len(data) > 1_900_000
    parsed = source.parse(doc, data)
    assert parsed.entries[0].content_html.count("<h2>") == body.count("## A heading")


# --- the shared corpus -----------------------------------------------------------------------


def parse_folder(folder: Path) -> list[ParsedDocument]:
    source = MarkdownSource(folder, SITE)
    return [source.parse(doc, source.read(doc)) for doc in source.scan()]


@pytest.mark.parametrize(
    ("folder", "count"),
    [("blog-000", 9), ("blog-001", 9), ("blog-002", 20), ("blog-003", 33), ("blog-004", 11)],
)
def test_corpus_folder_parses_completely(corpus_dir: Path, folder: str, count: int) -> None:
    parsed = parse_folder(corpus_dir / folder)
    assert len(parsed) == count
    assert [s for p in parsed for s in p.skips] == []
    for doc in parsed:
        (post,) = doc.entries
        assert post.published.tzinfo is UTC
        assert post.published.time() == datetime(2000, 1, 1, 9).time()
        assert post.title and post.summary and post.content_html.startswith("<p>")
        assert len(post.content_hash) == 64


def test_corpus_untitled_posts_get_derived_titles(corpus_dir: Path) -> None:
    entries = [e for p in parse_folder(corpus_dir / "blog-003") for e in p.entries]
    derived = [e for e in entries if any("title: missing" in w for w in e.warnings)]
    assert len(derived) == 31
    first = next(e for e in derived if e.key == "2013-01-15-deep-dive-into-the-architectural.md")
    assert first.title == (
        "Deep dive into the architectural challenges and solutions for scaling FC-Redirect from…"
    )
    assert all(len(e.title) <= 90 for e in derived)


def test_corpus_duplicate_pair_has_same_slug_and_hash(corpus_dir: Path) -> None:
    entries = {e.key: e for p in parse_folder(corpus_dir / "blog-003") for e in p.entries}
    a = entries["wasm-runtime-architecture-performance-and-security-trade-offs.md"]
    b = entries["2025-07-14-architectural-considerations-for-building-high-performance.md"]
    assert a.slug == b.slug == "wasm-runtime-architecture-performance-and-security-trade-offs"
    assert a.content_hash == b.content_hash


def test_corpus_tla_body_keeps_module_line(corpus_dir: Path) -> None:
    name = "tla-for-formal-verification-catching-distributed-systems-bugs-before-writing-a-single-line-of-code.md"  # noqa: E501
    (post,) = (
        MarkdownSource(corpus_dir / "blog-002", SITE)
        .parse(Document(name, 0, 0), (corpus_dir / "blog-002" / name).read_bytes())
        .entries
    )
    assert '<pre><code class="language-tla">---- MODULE Counter ----\n' in post.content_html
    assert post.reading_time == 10
    assert post.categories == ("Distributed Systems",)


def test_corpus_speculation_rules_script_shown_as_code(corpus_dir: Path) -> None:
    folder = corpus_dir / "blog-002"
    name = next(p.name for p in folder.glob("speculation-rules-*.md"))
    (post,) = (
        MarkdownSource(folder, SITE)
        .parse(Document(name, 0, 0), (folder / name).read_bytes())
        .entries
    )
    assert (
        '<pre><code class="language-html">&lt;script type="speculationrules"&gt;'
        in post.content_html
    )
    assert "<script" not in post.content_html


def test_corpus_markdown_link_summary_is_literal_text(corpus_dir: Path) -> None:
    """summary_format "text" (the default): the Markdown link is the author's literal text."""
    folder = corpus_dir / "blog-002"
    name = next(p.name for p in folder.glob("webcodecs-*.md"))
    (post,) = (
        MarkdownSource(folder, SITE)
        .parse(Document(name, 0, 0), (folder / name).read_bytes())
        .entries
    )
    assert post.summary.startswith(
        "Low-level video encoding and decoding without "
        "[FFmpeg.wasm](https://ffmpegwasm.netlify.app/) — VideoEncoder,"
    )
    assert post.summary_html is None


def test_corpus_markdown_link_summary_as_markdown(corpus_dir: Path) -> None:
    """summary_format "markdown": HTML with the link for HTML contexts, its text for the rest."""
    folder = corpus_dir / "blog-002"
    name = next(p.name for p in folder.glob("webcodecs-*.md"))
    (post,) = (
        MarkdownSource(folder, SITE, "markdown")
        .parse(Document(name, 0, 0), (folder / name).read_bytes())
        .entries
    )
    assert post.summary.startswith(
        "Low-level video encoding and decoding without FFmpeg.wasm — VideoEncoder,"
    )
    assert post.summary_html is not None
    assert '<a href="https://ffmpegwasm.netlify.app/">FFmpeg.wasm</a>' in post.summary_html


def test_corpus_categories_keep_slashes(corpus_dir: Path) -> None:
    entries = [e for p in parse_folder(corpus_dir / "blog-001") for e in p.entries]
    assert any("X / Twitter Architecture" in e.categories for e in entries)


# --- robustness ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(max_size=300).map(lambda t: ("---\n" + t).encode("utf-8", "surrogatepass")),
        st.text(max_size=200).map(
            lambda t: f"---\ntitle: {t}\ndate: 2026-01-01\n---\n{t}".encode("utf-8", "replace")
        ),
    )
)
def test_parse_never_raises(data: bytes) -> None:
    parsed = MarkdownSource(BAD, SITE).parse(Document("fuzz.md", len(data), 0), data)
    assert len(parsed.entries) + len(parsed.skips) == 1
    for skip in parsed.skips:
        assert skip.key == "fuzz.md" and skip.reason.startswith("fuzz.md: ")


# --- factory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "cls"), [("markdown", MarkdownSource), ("json", JsonSource), ("feed", FeedFileSource)]
)
def test_open_source_dispatches_on_kind(
    tmp_path: Path, kind: str, cls: type[MarkdownSource | JsonSource | FeedFileSource]
) -> None:
    data = {"site": {"title": "B", "url": SITE + "/"}, "source": {"kind": kind, "path": "in"}}
    source = open_source(settings_from_mapping(data, tmp_path, "test", {}))
    assert type(source) is cls
    assert source == cls(tmp_path / "in", SITE)
