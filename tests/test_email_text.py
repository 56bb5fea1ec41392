"""Plain-text helpers of the email renderer."""

from __future__ import annotations

from feedpipe.emails.text import html_to_text, summary_text, truncate, wrap
from feedpipe.model.text import clean_line


def test_one_line_removes_controls_and_breaks() -> None:
    assert clean_line(" a\r\nb\tc\x00d\x85e\u2028f\ufffe ") == "a b cd e f"


def test_truncate_keeps_whole_characters() -> None:
    text = "ab" + "👩\u200d👩\u200d👧" * 10
    cut = truncate(text, 6, words=False)
    assert cut.endswith("…") and len(cut) <= 6
    assert "\u200d…" not in cut
    assert truncate("short", 10) == "short"
    assert truncate("one two three four five", 15) == "one two three…"


def test_html_to_text_is_for_bodies() -> None:
    assert html_to_text("<p>Tom &amp; Jerry &lt;3</p>") == "Tom & Jerry <3"
    assert html_to_text("2 * 3 * 4") == "2 * 3 * 4"


def test_summary_is_literal() -> None:
    """A summary is plain text: never unwrapped as Markdown, decoded or stripped of tags."""
    for text in ("See [FFmpeg.wasm](https://x/) now", "&lt;b&gt; <T> **x**", "a <![CDATA[ b"):
        assert summary_text(text, "<p>body</p>") == text


def test_truncate_keeps_flags_whole() -> None:
    cut = truncate("ab " + "🇩🇪" * 10, 8, words=False)
    assert cut == "ab 🇩🇪🇩🇪…"


def test_summary_from_body_when_missing() -> None:
    body = "<h2>Intro</h2><p>First &amp; second.</p><p>" + "more " * 100_000 + "</p>"
    text = summary_text("", body)
    assert text.startswith("Intro First & second. more")
    assert len(text) <= 300 and text.endswith("…")
    assert summary_text("", "<p>abc</p><a hre") == "abc"


def test_wrap_never_breaks_a_url() -> None:
    url = "https://example.com/" + "a-" * 60
    wrapped = wrap("read " + url + " and more words " * 10, "   ")
    assert url in wrapped.splitlines()[1]
    assert all(len(line) <= 72 for line in wrapped.splitlines() if url not in line)
