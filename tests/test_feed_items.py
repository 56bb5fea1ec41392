"""Items built as text equal what lxml and json.dumps write, for any text (property tests)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.feeds import atom, jsonfeed, rss
from feedpipe.feeds.formats import render_feed
from feedpipe.feeds.render import Fragments, Paging, clean
from feedpipe.model import FeedSpec, Post, Term, TermKind
from feedpipe.model.text import clean_block, surely_clean
from feedpipe.settings import FeedFormat
from tests.feeds_reference import atom_entry, json_item_bytes, rss_item
from tests.test_feeds_render import make_ctx, make_post

PIECES = (
    "<", ">", "&", "&amp;", "]]>", '"', "'", "\\", "\x00", "\x08", "\x0b", "\x1f", "\x7f",
    "\x80", "\x85", "\x9f", "\xa0", "\xc2", "\ufffe", "\uffff", "\ud800", "\udfff", "\r\n",
    "\r", "\n", "\t", "\u2028", "é", "’", "👍🏽", "\ufeff", "=", "\x0c",
)  # fmt: skip
TEXT = st.lists(st.one_of(st.text(max_size=5), st.sampled_from(PIECES)), max_size=8).map("".join)
# Long enough for the paths that escape long values on their own (jsonfeed.LONG).
LONG = st.tuples(TEXT, st.integers(1, 80)).map(lambda pair: pair[0] * pair[1])
MAYBE = st.one_of(st.none(), TEXT)


@st.composite
def posts(draw: st.DrawFn) -> Post:
    terms = st.builds(
        Term, st.sampled_from(list(TermKind)), TEXT, TEXT, st.sampled_from(["a", "b-c"])
    )
    chosen = draw(st.lists(terms, max_size=3))
    return dataclasses.replace(
        make_post(draw(st.integers(0, 99))),
        guid=draw(TEXT),
        url=draw(TEXT),
        title=draw(TEXT),
        summary=draw(TEXT),
        summary_html=draw(MAYBE),
        content_html=draw(st.one_of(TEXT, LONG)),
        author=draw(MAYBE),
        image=draw(st.one_of(st.none(), TEXT.map(lambda s: "https://x.example/" + s))),
        image_alt=draw(MAYBE),
        categories=tuple(t for t in chosen if t.kind is TermKind.CATEGORY),
        tags=tuple(t for t in chosen if t.kind is TermKind.TAG),
    )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(posts(), st.sampled_from([None, "Ann <&> Author"]))
def test_items_are_the_bytes_lxml_and_json_write(post: Post, author: str | None) -> None:
    ctx = make_ctx(author=author)
    assert rss._item_bytes(post, ctx) == rss_item(post, ctx)
    assert atom._entry_bytes(post, ctx) == atom_entry(post, ctx)
    assert jsonfeed._item_bytes(post) == json_item_bytes(post)


@settings(deadline=None)
@given(st.one_of(TEXT, LONG))
def test_surely_clean_is_never_wrong_and_clean_is_clean_block(text: str) -> None:
    if surely_clean(text):
        assert clean_block(text) == text
    assert clean(text) == clean_block(text)
    assert surely_clean(text) or not text.isascii() or clean_block(text) != text


@settings(deadline=None)
@given(st.one_of(TEXT, LONG))
def test_json_text_is_what_json_dumps_writes(text: str) -> None:
    value = clean(text)
    expected = json.dumps(value, ensure_ascii=False)[1:-1].encode("utf-8")
    assert jsonfeed.json_text(value) == expected


@pytest.mark.parametrize("title", ["My Blog", "My Blog 987654302 Sun, 03 Feb 1901 04:05:06 GMT"])
@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_archive_pages_from_a_head_template_equal_pages_made_alone(
    fmt: FeedFormat, title: str
) -> None:
    spec = FeedSpec("site", "", title)
    ctx = make_ctx()
    shared = Fragments()
    for number in range(1, 7):
        paging = Paging(number, number - 1, 0 if number == 6 else number + 1)
        posts = [make_post(n) for n in range(number * 3, number * 3 + 3)] if number < 6 else []
        alone = render_feed(fmt, spec, posts, ctx, Fragments(), paging)
        assert render_feed(fmt, spec, posts, ctx, shared, paging) == alone
