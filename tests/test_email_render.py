"""Digest rendering and delivery-ready messages, checked by parsing the bytes back."""

from __future__ import annotations

import email
import re
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from feedpipe.emails.mime import MimeTemplate, clean_name
from feedpipe.emails.preview import write_preview
from feedpipe.emails.render import EmailRenderer, RenderedEdition, personalize
from feedpipe.errors import ValidationError
from feedpipe.model import EditionContent, Recipient
from tests.naive_email import render_message
from tests.test_email_support import corpus_posts, edition, make_post, recipient, settings

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
MSGID = "<42.abc@blog.example.com>"
REQUIRED = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Precedence",
    "Auto-Submitted",
    "Feedback-ID",
    "Content-Type",
)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    return _lf(text.get_content()), _lf(html.get_content())


def _lf(text: object) -> str:
    return str(text).replace("\r\n", "\n")


def strings(html: str, path: str) -> list[str]:
    """The string results (attribute values, text nodes) of an XPath over an HTML body."""
    found = lxml_html.fromstring(html).xpath(path)
    assert isinstance(found, list) and all(isinstance(item, str) for item in found), found
    return [str(item) for item in found]


def elements(html: str, path: str) -> list[etree._Element]:
    """The elements an XPath over an HTML body selects."""
    found = lxml_html.fromstring(html).xpath(path)
    assert isinstance(found, list) and all(isinstance(i, etree._Element) for i in found), found
    return [item for item in found if isinstance(item, etree._Element)]


def raw_header(data: bytes, name: str) -> str:
    """A header decoded per RFC 2047 from the raw bytes (space between encoded words dropped)."""
    raw = str(email.message_from_bytes(data, policy=policy.compat32)[name])
    return str(make_header(decode_header(re.sub(r"\r?\n(?=[ \t])", "", raw).strip())))


def send(content: EditionContent, who: Recipient | None = None, **digest: object) -> bytes:
    edition = EmailRenderer(settings(**digest)).render_edition(content)
    return personalize(edition, who or recipient(), MSGID, NOW)


@pytest.fixture(scope="module")
def corpus_edition() -> EditionContent:
    folder = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "blog-002"
    return edition(corpus_posts(folder))


@pytest.fixture(scope="module")
def corpus_message(corpus_edition: EditionContent) -> bytes:
    return send(corpus_edition)


def test_corpus_digest_has_text_then_html(corpus_message: bytes) -> None:
    message = parse(corpus_message)
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert "ClickHouse: Columnar OLAP" in text
    assert "ClickHouse: Columnar OLAP" in html
    assert "Hello," in text  # "Ann Example": several words, so no guess at the given name
    # A summary is plain text (summary_format "text"): the Markdown link is shown as written.
    assert "[FFmpeg.wasm](https://ffmpegwasm.netlify.app/)" in text.replace("\n   ", " ")


def test_every_required_header(corpus_message: bytes) -> None:
    message = parse(corpus_message)
    for name in REQUIRED:
        assert message[name], name
    assert str(message["From"]) == "Blog 002 <digest@blog.example.com>"
    assert message["To"].addresses[0].addr_spec == "ann@example.org"
    assert message["To"].addresses[0].display_name == "Ann Example"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"] == MSGID
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "Blog 002 <digest.blog.example.com>"
    assert message["List-Unsubscribe"] == (
        "<https://news.example.com/u/tok.abc-123?list=digest&x=1>, "
        "<mailto:unsubscribe@blog.example.com>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Feedback-ID"] == "digest:blog002:feedpipe"
    assert not message.defects


def test_every_link_is_absolute(corpus_message: bytes) -> None:
    text, html = parts(parse(corpus_message))
    links = strings(html, "//a/@href") + strings(html, "//img/@src")
    assert len(links) > 20
    assert all(re.match(r"https?://[^/]+", link) for link in links), links
    references = re.findall(r"^\[\d+\] (\S+)$", text, re.MULTILINE)
    assert len(references) == 20
    assert all(ref.startswith("https://blog.example.com/posts/") for ref in references)


def test_text_is_72_columns_and_urls_are_never_broken(corpus_message: bytes) -> None:
    text, html = parts(parse(corpus_message))
    for line in text.splitlines():
        if len(line) > 72:
            assert re.fullmatch(r"(\[\d+\] |Unsubscribe: |Preferences: )?https://\S+", line), line
    urls = set(strings(html, "//a/@href"))
    for url in urls:
        assert url in text, url
    assert "<" not in text and "&amp;" not in text and "**" not in text


def test_escaping_in_text_and_html() -> None:
    title = '5 < 6 && "x"'
    post = make_post(1, title, ("A & B",), summary="Tom &amp; Jerry <b>bold</b> **strong**")
    text, html = parts(parse(send(edition([post]))))
    assert title in text
    assert "Tom &amp; Jerry <b>bold</b> **strong**" in text  # plain text, as written
    assert "5 &lt; 6 &amp;&amp;" in html and "<b>" not in html
    assert "Tom &amp;amp; Jerry &lt;b&gt;bold&lt;/b&gt; **strong**" in html
    assert "Tom &amp; Jerry <b>bold</b> **strong**" in strings(
        html, "//p[contains(@class, 'excerpt')]/text()"
    )
    assert title in strings(html, "//a/text()")
    assert "A & B" in strings(html, "//h2/text()")


def test_image_has_alt_and_size() -> None:
    post = make_post(1, "Pic", image="/img/a.png", image_alt="A chart")
    _, html = parts(parse(send(edition([post]))))
    (img,) = elements(html, "//img")
    assert img.get("src") == "https://blog.example.com/img/a.png"
    assert img.get("alt") == "A chart"
    assert img.get("width") and img.get("height")


def test_html_keeps_media_rules_and_inlines_the_rest(corpus_message: bytes) -> None:
    _, html = parts(parse(corpus_message))
    assert "@media only screen and (max-width: 620px)" in html
    assert "prefers-color-scheme: dark" in html
    assert "!important" in html
    assert 'name="color-scheme"' in html
    assert 'class="preheader"' in html
    (title_style,) = set(strings(html, "//a[contains(@class, 'title')]/@style"))
    assert "font-size: 18px" in title_style  # .title rule inlined
    footer = strings(html, "//a/text()")
    assert "Unsubscribe" in footer and "Change preferences" in footer


def test_huge_body_never_reaches_the_message() -> None:
    body = "<p>" + "word " * 400_000 + "SECRET-END</p>"
    post = make_post(1, "Huge", summary="", content_html=body)
    data = send(edition([post]))
    assert len(data) < 102_000
    text, html = parts(parse(data))
    assert "SECRET-END" not in text + html
    assert "word word" in text


def test_300_posts_stay_under_the_limit_with_and_n_more() -> None:
    posts = [
        make_post(n, f"Post number {n} about things", (f"Cat {n % 7}",), summary="x " * 140)
        for n in range(1, 301)
    ]
    content = edition(posts)
    rendered = EmailRenderer(settings()).render_edition(content)
    data = personalize(rendered, recipient(), MSGID, NOW)
    assert len(data) <= 102_000
    assert 0 < rendered.shown_count < 300
    more = 300 - rendered.shown_count
    text, html = parts(parse(data))
    assert f"and {more} more posts" in text
    assert f"and {more} more posts" in html
    assert "https://blog.example.com" in text.split("Links:")[1]
    assert rendered.subject.startswith("Blog 002 — 300 new posts")


def test_subject_rfc2047_round_trip() -> None:
    post = make_post(1, "Hello", ("Distributed — Systems 🚀",))
    content = edition([post])
    rendered = EmailRenderer(settings()).render_edition(content)
    data = personalize(rendered, recipient(), MSGID, NOW)
    raw = data.split(b"\r\n\r\n", 1)[0]
    assert raw.isascii()
    assert parse(data)["Subject"] == rendered.subject
    assert rendered.subject == "Blog 002 — 1 new post: Distributed — Systems 🚀"
    folded = re.search(rb"^Subject: (.*?)\r\n(?! )", raw, re.MULTILINE | re.DOTALL)
    assert folded
    value = folded[1].decode().replace("\r\n", "")
    assert str(make_header(decode_header(value))) == rendered.subject


def test_long_subject_is_cut_with_an_ellipsis() -> None:
    posts = [make_post(n, "T", (f"Category {n} 🚀",)) for n in range(30)]
    subject = parse(send(edition(posts)))["Subject"]
    assert len(subject) <= 120 and subject.endswith("…")


@pytest.mark.parametrize(
    "evil",
    ["x\r\nBcc: evil@example.net", "x\nX-Evil: 1", "x\rBcc: evil@example.net", "x\x00\x85Bcc: e"],
)
def test_no_header_injection(evil: str) -> None:
    post = make_post(1, evil, (evil,), author=evil, image="https://i.example/a.png", image_alt=evil)
    data = send(edition([post]), recipient(name=evil))
    message = parse(data)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert not message.defects
    assert "\n" not in message["Subject"] and "\n" not in str(message["To"])
    head = data.split(b"\r\n\r\n", 1)[0]
    names = {line.split(b":")[0] for line in head.split(b"\r\n") if not line.startswith(b" ")}
    assert names == {n.encode() for n in REQUIRED}


@pytest.mark.parametrize(
    "name",
    [
        "Ann Example",
        None,
        "Zoë O'Brien-Łukasz 🚀",
        'Mr "Quote" <script>alert(1)</script> & Co, Ltd.',
        "Ö" * 200,
    ],
)
def test_substitution_equals_a_full_render(
    corpus_edition: EditionContent, name: str | None
) -> None:
    renderer = EmailRenderer(settings())
    who = Recipient(
        3,
        "zoe+digest@example.org",
        name,
        "https://news.example.com/u/" + "t0k=" * 150 + "?a=1&b=2",
        "https://news.example.com/p/%C3%A9?x=1&y='2'",
    )
    rendered = renderer.render_edition(corpus_edition)
    fast_bytes = personalize(rendered, who, MSGID, NOW)
    slow_bytes = render_message(renderer, corpus_edition, who, MSGID, NOW)
    fast, slow = parse(fast_bytes), parse(slow_bytes)
    assert parts(fast) == parts(slow)
    for header in REQUIRED[:-1]:
        assert header == "To" or fast[header] == slow[header], header
    # CPython's parser keeps the space between adjacent encoded words; RFC 2047 drops it.
    to = raw_header(fast_bytes, "To")
    assert to == raw_header(slow_bytes, "To")
    (address,) = fast["To"].addresses
    assert address.addr_spec == "zoe+digest@example.org"
    assert address.display_name.replace(" ", "") == clean_name(name).replace(" ", "")


@pytest.mark.parametrize("given", ["Zoë", 'Dr. "Z" <b>&</b>', "山田 太郎"])
def test_substitution_equals_a_full_render_with_a_given_name(
    corpus_edition: EditionContent, given: str
) -> None:
    renderer = EmailRenderer(settings())
    who = replace(recipient(name="Zoë O'Brien"), given_name=given)
    rendered = renderer.render_edition(corpus_edition)
    fast = parse(personalize(rendered, who, MSGID, NOW))
    slow = parse(render_message(renderer, corpus_edition, who, MSGID, NOW))
    assert parts(fast) == parts(slow)
    assert f"Hi {given}," in parts(fast)[0].splitlines()
    assert fast["To"].addresses[0].display_name == "Zoë O'Brien"  # To keeps the full name


def test_name_is_escaped_in_html_and_plain_in_text() -> None:
    name = "<b>Ann</b>&Co"  # one word: the greeting uses it
    text, html = parts(parse(send(edition([make_post(1, "T")]), recipient(name=name))))
    assert "Hi <b>Ann</b>&Co," in text
    assert "Hi &lt;b&gt;Ann&lt;/b&gt;&amp;Co," in html


def test_quoted_printable_lines_are_short(corpus_message: bytes) -> None:
    head, body = corpus_message.split(b"\r\n\r\n", 1)
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert corpus_message.isascii()


def test_template_round_trips_through_dump(corpus_edition: EditionContent) -> None:
    rendered = EmailRenderer(settings()).render_edition(corpus_edition)
    loaded = MimeTemplate.load(rendered.template.dump())
    edition2 = RenderedEdition(
        rendered.key,
        rendered.subject,
        rendered.html,
        rendered.text,
        loaded,
        rendered.post_count,
        rendered.shown_count,
    )
    assert personalize(edition2, recipient(), MSGID, NOW) == personalize(
        rendered, recipient(), MSGID, NOW
    )


def test_substituted_bytes_do_not_depend_on_the_render(corpus_edition: EditionContent) -> None:
    renderer = EmailRenderer(settings())
    first = personalize(renderer.render_edition(corpus_edition), recipient(), MSGID, NOW)
    second = personalize(renderer.render_edition(corpus_edition), recipient(), MSGID, NOW)
    assert first == second


@pytest.mark.parametrize(
    "who",
    [
        recipient(email="ann@example.org\r\nBcc: x@y"),
        recipient(email="änn@example.org"),
        Recipient(1, "a@b.example", None, "javascript:alert(1)", "https://x.example/p"),
        Recipient(1, "a@b.example", None, "https://x.example/u\r\nBcc: x", "https://x.example"),
        Recipient(1, "a@b.example", None, "https://x.example/u", 'https://x.example/"><b>'),
    ],
)
def test_unsafe_recipient_values_are_refused(who: Recipient) -> None:
    rendered = EmailRenderer(settings()).render_edition(edition([make_post(1, "T")]))
    with pytest.raises(ValidationError):
        personalize(rendered, who, MSGID, NOW)


def test_naive_date_and_bad_message_id_are_refused() -> None:
    rendered = EmailRenderer(settings()).render_edition(edition([make_post(1, "T")]))
    with pytest.raises(ValidationError):
        personalize(rendered, recipient(), MSGID, datetime(2026, 1, 1))
    with pytest.raises(ValidationError):
        personalize(rendered, recipient(), "<a b@c>\r\nBcc: x", NOW)


def test_site_templates_override_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("{{ edition.post_count }} fresh from {{ site.title }}")
    data = send(edition([make_post(1, "T")]), templates_dir=tmp_path)
    message = parse(data)
    assert message["Subject"] == "1 fresh from Blog 002"
    assert "Unsubscribe" in parts(message)[1]  # digest.html.j2 still the default


def test_undefined_variables_and_filtered_placeholders_fail(tmp_path: Path) -> None:
    (tmp_path / "subject.txt.j2").write_text("{{ edition.nope }}")
    with pytest.raises(Exception, match="nope"):
        send(edition([make_post(1, "T")]), templates_dir=tmp_path)
    (tmp_path / "subject.txt.j2").unlink()
    (tmp_path / "digest.txt.j2").write_text("{{ recipient.name | upper }}")
    with pytest.raises(ValidationError, match="filter"):
        send(edition([make_post(1, "T")]), templates_dir=tmp_path)


def test_write_preview(tmp_path: Path, corpus_edition: EditionContent) -> None:
    paths = write_preview(EmailRenderer(settings()), corpus_edition, recipient(), tmp_path, NOW)
    assert [p.suffix for p in paths] == [".html", ".txt", ".eml"]
    message = parse(paths[2].read_bytes())
    text, html = parts(message)
    assert paths[0].read_text(encoding="utf-8") == html
    assert paths[1].read_text(encoding="utf-8") == text
    assert message["Message-ID"].endswith("@blog.example.com>")


def test_fingerprint_follows_templates_and_render_settings(tmp_path: Path) -> None:
    """What renders an edition: the effective templates (read at once) and its settings."""
    renderer = EmailRenderer(settings(templates_dir=str(tmp_path)))
    base = renderer.fingerprint()
    assert EmailRenderer(settings(templates_dir=str(tmp_path))).fingerprint() == base
    override = tmp_path / "subject.txt.j2"
    override.write_text("{{ site.title }}\n", encoding="utf-8")
    first = renderer.fingerprint()
    override.write_text("{{ site.title }}!\n", encoding="utf-8")
    assert len({base, first, renderer.fingerprint()}) == 3
    assert (
        EmailRenderer(settings(max_bytes=50_000)).fingerprint()
        != EmailRenderer(settings()).fingerprint()
    )
