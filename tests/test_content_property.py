"""Property: a plain-text field reads back as itself from every output, and adds no markup.

Arbitrary Unicode (markup and entity text, CDATA delimiters, quotes, XML-illegal controls,
U+FFFE, lone surrogates, bidi controls, combining marks, ZWJ emoji, flags, long runs) is used as
title, summary, author, category, tag and image alt of a post. Every feed, the OPML list, a
digest message and the archive page of that digest are parsed back (feedparser, lxml, json,
email with policy.default): the text equals the input under the documented normalisation
(docs/content.md: `clean_line`, names also NFC, email cut by grapheme with "…"), and every HTML
context holds exactly the elements and attributes the same post with neutral text gives.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections import Counter

import feedparser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.emails.render import clean_subject
from feedpipe.emails.text import SUMMARY_CHARS, truncate
from feedpipe.emails.views import SECTION_CHARS, TITLE_CHARS
from feedpipe.model.text import clean_line
from tests.content_helpers import (
    Fields,
    Outputs,
    entry_of,
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

NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "media": "http://search.yahoo.com/mrss/",
}
PIECES = (
    "<", ">", "&", "&lt;b&gt;", "&amp;", "&#x27;", "]]>", "<![CDATA[", '"', "'", "<b>x</b>",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<!--", "-->", "{{ x }}",
    "[a](https://x.example/)", "**b**", "\x00", "\x08", "\x0b", "\x1f", "\x7f", "\x85", "\x9f",
    "\ufffe", "\uffff", "\ud800", "\r\n", "\t", "\u2028", "\u00a0", "\u202e", "\u2066",
    "\u200f", "e\u0301", "\u0301", "\u200d", "👩\u200d👩\u200d👧", "🇩🇪", "🇯🇵", "👍🏽", "\ufeff",
    "=?utf-8?q?x?=", "=", ":", ",", "—",
)  # fmt: skip
TEXT = st.lists(
    st.one_of(st.text(max_size=6), st.sampled_from(PIECES)), min_size=1, max_size=14
).map("".join)
LONG = st.tuples(TEXT, st.integers(20, 120)).map(lambda pair: (pair[0] + " ") * pair[1])
FIELD = st.one_of(TEXT, TEXT, TEXT, LONG).filter(lambda s: bool(clean_line(s)))
NEUTRAL = Fields("Neutral", "Neutral", "Neutral", "Neutral", "Other", "Neutral")


def name(text: str) -> str:
    """A category or tag name's normalisation: NFC, then the one-line rule."""
    return clean_line(unicodedata.normalize("NFC", text))


@functools.cache
def neutral() -> Outputs:
    return outputs(post_of(entry_of(NEUTRAL)))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(FIELD, FIELD, FIELD, FIELD, FIELD, FIELD)
def test_plain_text_fields_read_back_as_written(
    title: str, summary: str, author: str, category: str, tag: str, alt: str
) -> None:
    fields = Fields(title, summary, author, category, tag, alt)
    expected = Fields(
        clean_line(title),
        clean_line(summary),
        clean_line(author),
        name(category),
        name(tag),
        clean_line(alt),
    )
    if expected.category.casefold() == expected.tag.casefold():
        return  # one name as category and tag: the neutral post has two terms
    out = outputs(post_of(entry_of(fields)))
    _check_rss(out, expected)
    _check_atom(out, expected)
    _check_json(out, expected)
    _check_opml(out, expected)
    _check_email(out, expected)


def _check_rss(out: Outputs, want: Fields) -> None:
    assert not feedparser.parse(out.rss).bozo
    root, base = xml(out.rss), xml(neutral().rss)
    assert xpath_text(root, "//item/title") == [want.title]  # text context
    assert xpath_text(root, "//item/dc:creator", NS) == [want.author]
    assert xpath_text(root, "//item/category") == [want.category, want.tag]
    assert xpath_text(root, "//media:description", NS) == [want.image_alt]
    (description,) = xpath_text(root, "//item/description")  # HTML context
    assert html_text(description) == want.summary
    for path in ("//item/description", "//item/content:encoded"):
        (mine,), (theirs,) = xpath_text(root, path, NS), xpath_text(base, path, NS)
        assert html_elements(mine) == html_elements(theirs), path


def _check_atom(out: Outputs, want: Fields) -> None:
    parsed = feedparser.parse(out.atom)  # a reader: well-formed, and both fields typed text
    assert not parsed.bozo
    (entry,) = parsed.entries
    assert (entry.title_detail.type, entry.summary_detail.type) == ("text/plain", "text/plain")
    # Exact text through lxml: feedparser "repairs" text that looks like Latin-1 mojibake
    # (`Ã½` → `ý`), which would test feedparser, not feedpipe.
    root = xml(out.atom)
    assert xpath_text(root, "//atom:entry/atom:title", NS) == [want.title]
    assert xpath_text(root, "//atom:entry/atom:summary[@type='text']", NS) == [want.summary]
    assert xpath_text(root, "//atom:entry/atom:author/atom:name", NS) == [want.author]
    terms = root.xpath("//atom:entry/atom:category/@term", namespaces=NS)
    assert terms == [want.category, want.tag]
    (content,) = xpath_text(root, "//atom:entry/atom:content", NS)
    (theirs,) = xpath_text(xml(neutral().atom), "//atom:entry/atom:content", NS)
    assert html_elements(content) == html_elements(theirs)


def _check_json(out: Outputs, want: Fields) -> None:
    (item,) = json.loads(out.json)["items"]
    assert (item["title"], item["summary"]) == (want.title, want.summary)
    assert item["authors"] == [{"name": want.author}]
    assert item["tags"] == [want.category, want.tag]
    (theirs,) = json.loads(neutral().json)["items"]
    assert html_elements(item["content_html"]) == html_elements(theirs["content_html"])


def _check_opml(out: Outputs, want: Fields) -> None:
    outlines = xml(out.opml).xpath("//outline/@text")
    assert outlines == ["My Blog", clean_line(f"My Blog — {want.category}")]


def _check_email(out: Outputs, want: Fields) -> None:
    subject = clean_subject(f"Blog 002 — 1 new post: {want.category}")
    assert out.message["Subject"] == subject
    title = truncate(want.title, TITLE_CHARS)
    summary = truncate(want.summary, SUMMARY_CHARS)
    text, page = text_parts(out.message)
    flat = unwrapped(text)
    assert f"{title} [1]" in flat and summary in flat
    _, base_page = text_parts(neutral().message)
    for mine, theirs in ((page, base_page), (out.archive_html, neutral().archive_html)):
        assert _counts(mine) == _counts(theirs)
        assert html_strings(mine, "//title/text()") == [subject]
        assert html_strings(mine, "//a[contains(@class,'title')]/text()") == [title]
        assert html_strings(mine, "//p[contains(@class,'excerpt')]/text()") == [summary]
        assert html_strings(mine, "//h2/text()") == [truncate(want.category, SECTION_CHARS)]
        assert html_strings(mine, "//img/@alt") == [want.image_alt]
        meta = html_strings(mine, "//p[contains(@class,'meta')]/text()")
        assert meta and meta[0].endswith(f" · {want.author}")


def _counts(page: str) -> Counter[str]:
    """Elements of a digest page, without `style`: css-inline writes it per element."""
    return Counter({k: v for k, v in html_elements(page).items() if not k.endswith("@style")})
