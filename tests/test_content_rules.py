"""One fixture per case of issue 10: each plain-text field means one thing in every output."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser
from hypothesis import given
from hypothesis import strategies as st

from feedpipe.emails.text import SUMMARY_CHARS
from feedpipe.emails.views import TITLE_CHARS
from feedpipe.model import Document, Entry
from feedpipe.model.text import ELLIPSIS, clean_block, clean_line, graphemes
from feedpipe.source.fields import SummaryFormat
from feedpipe.source.markdown import MarkdownSource
from tests.content_helpers import (
    SITE_URL,
    html_elements,
    html_strings,
    html_text,
    outputs,
    post_of,
    text_parts,
    unwrapped,
    xml,
    xpath_text,
)

FIXTURES = Path(__file__).parent / "fixtures" / "posts" / "content"
NS = {"atom": "http://www.w3.org/2005/Atom", "media": "http://search.yahoo.com/mrss/"}


def entry(name: str, summary_format: SummaryFormat = "text") -> Entry:
    source = MarkdownSource(FIXTURES, SITE_URL, summary_format)
    parsed = source.parse(Document(name, 0, 0), (FIXTURES / name).read_bytes())
    (found,) = parsed.entries
    return found


def test_escaped_summary_is_escaped_again_in_rss_description() -> None:
    """Was: `<description>Already-escaped text: &lt;script&gt;…` (a reader ran the script)."""
    post = post_of(entry("escaped-summary.md"))
    out = outputs(post)
    # HTML-escaped (&amp;lt;), then XML-escaped by the serialiser (&amp;amp;lt;).
    assert b"&amp;amp;lt;script&amp;amp;gt;alert(1)&amp;amp;lt;/script&amp;amp;gt;" in out.rss
    (description,) = xpath_text(xml(out.rss), "//item/description")
    assert html_elements(description) == {"div": 1}  # text only, no <script>
    assert html_text(description) == post.summary
    parsed = feedparser.parse(out.rss)
    assert "<script" not in parsed.entries[0].summary


def test_angle_brackets_and_entities_stay_as_written_everywhere() -> None:
    """Was: `Compare <T> and <U>` → `Compare and`, entities decoded, the email summary cut
    after a decoded `<script>` or `<![CDATA[`, Atom summary holding decoded markup."""
    found = entry("angle-brackets.md")
    written = "Compare <T> and <U>; keep &amp; and <script>x</script> then <![CDATA[ y ]]> z"
    assert found.summary == written
    assert (found.title, found.author) == ("Compare <T> and <U>", "Ann <ann@example.com>")
    assert (found.categories, found.tags) == (("C<T>",), ("&lt;b&gt;",))
    assert found.image_alt == 'An <img> & a "quote"'
    out = outputs(post_of(found))
    atom = xml(out.atom)
    assert xpath_text(atom, "//atom:entry/atom:summary[@type='text']", NS) == [written]
    (item,) = json.loads(out.json)["items"]
    assert (item["summary"], item["tags"]) == (written, ["C<T>", "&lt;b&gt;"])
    assert xpath_text(xml(out.rss), "//media:description", NS) == [found.image_alt]
    text, page = text_parts(out.message)
    assert written in unwrapped(text)
    assert html_strings(page, "//p[contains(@class,'excerpt')]/text()") == [written]
    assert html_strings(page, "//img/@alt") == [found.image_alt]
    assert not html_strings(page, "//script") and out.message["Subject"].endswith("C<T>")


def test_yaml_implicit_types_do_not_change_what_was_written() -> None:
    """Was: `title: 2.50` → 2.5, `slug: 0777` → 511, `summary: no` → False."""
    found = entry("yaml-typing.md")
    assert (found.title, found.slug, found.summary, found.author) == ("2.50", "0777", "no", "1e3")
    assert (found.categories, found.tags, found.image_alt) == (("no", "1.0"), ("on",), "yes")
    assert not found.warnings


def test_cutting_never_splits_a_flag_or_a_zwj_sequence() -> None:
    """Was: a subject, title or summary cut into a lone regional indicator or after U+200D."""
    found = entry("long-emoji-title.md")
    out = outputs(post_of(found))
    _, page = text_parts(out.message)
    title = html_strings(page, "//a[contains(@class,'title')]/text()")[0]
    summary = html_strings(page, "//p[contains(@class,'excerpt')]/text()")[0]
    subject = str(out.message["Subject"])
    for cut, source, limit in (
        (title, found.title, TITLE_CHARS),
        (summary, found.summary, SUMMARY_CHARS),
        (subject, "Blog 002 — 1 new post: " + found.categories[0], 120),
    ):
        assert cut.endswith(ELLIPSIS) and len(cut) <= limit
        kept = graphemes(cut[: -len(ELLIPSIS)])
        assert kept == graphemes(source)[: len(kept)]  # whole clusters of the source
        assert not cut[: -len(ELLIPSIS)].endswith("\u200d")


def test_markdown_summary_format_gives_html_to_html_contexts() -> None:
    """`[source] summary_format = "markdown"`: HTML where HTML goes, its text elsewhere."""
    found = entry("markdown-summary.md", "markdown")
    assert found.summary == "Without FFmpeg.wasm, fast & safe"
    out = outputs(post_of(found))
    (description,) = xpath_text(xml(out.rss), "//item/description")
    assert html_elements(description) == {"div": 1, "a": 1, "a@href": 1, "em": 1}
    atom = xml(out.atom)
    assert atom.xpath("//atom:entry/atom:summary/@type", namespaces=NS) == ["html"]
    (summary,) = xpath_text(atom, "//atom:entry/atom:summary", NS)
    assert "<script" not in summary and '<a href="https://ffmpegwasm.netlify.app/">' in summary
    (item,) = json.loads(out.json)["items"]
    assert item["summary"] == found.summary
    text, page = text_parts(out.message)
    assert found.summary in unwrapped(text)
    links = html_strings(page, "//p[contains(@class,'excerpt')]/a/@href")
    assert links == ["https://ffmpegwasm.netlify.app/"]
    assert not html_strings(page, "//script")


def test_line_folding_splits_on_exactly_the_unicode_whitespace_of_regex() -> None:
    """`clean_line` folds with str.split(): over every code point that survives the illegal
    characters' removal, it treats as space exactly what the `regex` module's \\s matches."""
    import regex

    space = regex.compile(r"\s")
    differ = [
        hex(point)
        for point in range(0x110000)
        if clean_block(char := chr(point))  # not one of the illegal characters
        if bool(space.fullmatch(char)) != (clean_line(f"a{char}b") == "a b")
    ]
    assert differ == []


ILLEGAL_POINTS = frozenset(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0x85), *range(0x86, 0xA0),
     *range(0xD800, 0xE000), 0xFFFE, 0xFFFF]
)  # fmt: skip


@given(st.text(alphabet=st.sampled_from(sorted(map(chr, ILLEGAL_POINTS))) | st.characters()))
def test_clean_block_removes_exactly_the_xml_illegal_characters(text: str) -> None:
    """Whatever the mix of legal and illegal characters (runs, at the ends, alone),
    `clean_block` drops exactly the illegal code points and keeps everything else in order."""
    assert clean_block(text) == "".join(c for c in text if ord(c) not in ILLEGAL_POINTS)
    long = f"{text}{'prose, with a quote ’ — ' * 60}{text}"  # long text: its bytes looked at first
    assert clean_block(long) == "".join(c for c in long if ord(c) not in ILLEGAL_POINTS)
