"""Digests people enjoy opening: language, plurals, direction, first-digest wording, greeting,
preheader, "view in your browser", thumbnails and logo — checked by parsing the MIME back."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2.ext import babel_extract
from lxml import html as lxml_html

from feedpipe.emails.i18n import CATALOGS, language
from feedpipe.emails.mime import clean_name, escape_text, greeting_name
from feedpipe.emails.render import EmailRenderer, RenderedEdition, personalize
from feedpipe.emails.views import OTHER_SECTION
from feedpipe.errors import ValidationError
from feedpipe.model import EditionContent, Post, Recipient
from feedpipe.settings import Settings, parse_settings
from tests.test_email_render import MSGID, NOW, parse, parts
from tests.test_email_support import SITE_URL, edition, make_post, recipient

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "email"


def site_settings(**site: Any) -> Settings:
    return parse_settings(
        {
            "site": {"title": "Blog 002", "url": SITE_URL, **site},
            "email": {"from_address": "digest@blog.example.com"},
            "web": {"base_url": "https://news.example.com"},
        }
    )


def posts(count: int) -> list[Post]:
    return [make_post(n, f"Post {n}", ("Rust",)) for n in range(1, count + 1)]


def render(
    content: EditionContent, who: Recipient | None = None, **site: Any
) -> tuple[str, str, str]:
    """(subject, text part, HTML part) of `content` sent to `who`."""
    rendered = EmailRenderer(site_settings(**site)).render_edition(content)
    message = parse(personalize(rendered, who or recipient(), MSGID, NOW))
    text, html = parts(message)
    return str(message["Subject"]), text, html


def root(html: str) -> Any:
    return lxml_html.document_fromstring(html)


@pytest.mark.parametrize(
    ("count", "subject", "intro"),
    [
        (1, "1 neuer Beitrag", "Hier ist 1 neuer Beitrag seit Ihrer letzten Übersicht."),
        (2, "2 neue Beiträge", "Hier sind 2 neue Beiträge seit Ihrer letzten Übersicht."),
        (5, "5 neue Beiträge", "Hier sind 5 neue Beiträge seit Ihrer letzten Übersicht."),
    ],
)
def test_german_strings_plurals_and_dates(count: int, subject: str, intro: str) -> None:
    found_subject, text, html = render(edition(posts(count)), language="de")
    assert found_subject == f"Blog 002 — {subject}: Rust"
    page = root(html)
    assert page.get("lang") == "de" and page.get("dir") == "ltr"
    for part in (text, page.text_content()):
        assert intro in " ".join(part.split())
        assert "01.10.2026" in part  # Babel's medium German date
        assert "Oct 1, 2026" not in part
        assert "Abbestellen" in part and "Im Browser ansehen" in part
        assert "5 Minuten Lesezeit" in part
        assert "since your last digest" not in part
    assert "Hallo," in text  # "Ann Example": several words, no guess at the given name


@pytest.mark.parametrize(
    ("count", "words"), [(1, "1 new post"), (2, "2 new posts"), (5, "5 new posts")]
)
def test_english_plurals(count: int, words: str) -> None:
    subject, text, html = render(edition(posts(count)))
    assert subject == f"Blog 002 — {words}: Rust"
    verb = "is" if count == 1 else "are"
    sentence = f"Here {verb} {words} since your last digest."
    assert sentence in text and sentence in " ".join(root(html).text_content().split())
    assert "Oct 1, 2026" in text


@pytest.mark.parametrize("tag", ["ar", "he"])
def test_right_to_left_language_sets_dir_and_lang(tag: str) -> None:
    _, _, html = render(edition(posts(2)), language=tag)
    page = root(html)
    assert page.get("dir") == "rtl" and page.get("lang") == tag
    assert page.body.get("dir") == "rtl"
    (card,) = page.xpath("//table[contains(@class, 'container')]")
    assert card.get("dir") == "rtl"


def test_a_territory_falls_back_to_its_language_catalog() -> None:
    subject, _, html = render(edition(posts(2)), language="de-AT")
    assert "2 neue Beiträge" in subject and root(html).get("lang") == "de-AT"


def test_an_unknown_language_is_refused_naming_the_key() -> None:
    with pytest.raises(ValidationError, match=r"\[site\] language = 'xx-nope'"):
        EmailRenderer(site_settings(language="xx-nope"))


def test_every_template_string_has_a_german_translation() -> None:
    with (CATALOGS / "de" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    wanted = {OTHER_SECTION[0]}
    for path in TEMPLATES.glob("*.j2"):
        extractor: Any = babel_extract  # Jinja2's Babel extractor (typed looser than Babel's)
        for _, message, _, _ in extract_from_file(extractor, str(path)):
            wanted.add(message if isinstance(message, str) else message[0])
    assert len(wanted) >= 12
    for msgid in sorted(wanted):
        entry = catalog.get(msgid)
        assert entry is not None and entry.string, f"no German for {msgid!r}"


def test_the_other_section_is_translated() -> None:
    post = make_post(1, "Loose", ())
    content = edition([post])
    content = replace(
        content, sections=(replace(content.sections[0], title="More posts", slug="more"),)
    )
    subject, text, _ = render(content, language="de")
    assert subject.endswith("Weitere Beiträge") and "WEITERE BEITRÄGE" in text


def test_first_digest_says_newest_posts_not_since_your_last_digest() -> None:
    content = edition(posts(3))
    rendered = EmailRenderer(site_settings()).render_edition(content)
    first = parse(personalize(rendered, replace(recipient(), first=True), MSGID, NOW))
    later = parse(personalize(rendered, recipient(), MSGID, NOW))
    for part in parts(first):
        assert "Here are the newest posts from Blog 002." in part
        assert "since your last digest" not in part
    for part in parts(later):
        assert "Here are 3 new posts since your last digest." in part
        assert "newest posts" not in part


@pytest.mark.parametrize(
    ("name", "given", "language", "greeting"),
    [
        ("Ann", None, "en", "Hi Ann,"),
        ("Søren", None, "en", "Hi Søren,"),
        ("Ann Example", None, "en", "Hello,"),
        (None, None, "en", "Hello,"),
        ("Ann Example", "Annie", "en", "Hi Annie,"),  # the given name wins ...
        ("Ann", "Dr. Ann", "en", "Hi Dr. Ann,"),  # ... even over a one-word name
        ("Yamada Tarō", "太郎", "en", "Hi 太郎,"),
        (None, "Kim", "en", "Hi Kim,"),
        ("Ann Example", "  \r\n ", "en", "Hello,"),  # nothing printable: the rules below
        ("Ann", " \t", "en", "Hi Ann,"),
        ("Ann Example", "Annie", "de", "Hallo Annie,"),
        ("Jörg", None, "de", "Hallo Jörg,"),
        ("Jörg Müller", None, "de", "Hallo,"),
    ],
)
def test_greeting_by_given_name_then_a_one_word_name_then_none(
    name: str | None, given: str | None, language: str, greeting: str
) -> None:
    rendered = EmailRenderer(site_settings(language=language)).render_edition(edition(posts(1)))
    who = replace(recipient(name=name), given_name=given)
    message = parse(personalize(rendered, who, MSGID, NOW))
    text, html = parts(message)
    assert text.splitlines()[2] == greeting
    assert _greeting_line(html) == greeting
    if name:
        assert message["To"].addresses[0].display_name == name  # the To header keeps it all


def _greeting_line(html: str) -> str:
    """The text before the <br> of the HTML part's greeting paragraph (under the title)."""
    (greeting,) = root(html).xpath("//p[contains(@class, 'h1')]/following-sibling::p[1]")
    return str(greeting.text or "")


NAME_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Cn", "Co"]), max_size=80
)


@given(given_name=NAME_TEXT, name=st.none() | NAME_TEXT, language=st.sampled_from(["en", "de"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_given_name_is_escaped_in_html_verbatim_in_text_and_never_the_address(
    given_name: str, name: str | None, language: str
) -> None:
    rendered = _one_post_edition(language)
    address = "reader.7@example.org"
    who = replace(recipient(name=name, email=address), given_name=given_name)
    raw = personalize(rendered, who, MSGID, NOW)
    text, html = parts(parse(raw))
    called = greeting_name(clean_name(name), given_name)
    hello, hi = {"en": ("Hello,", "Hi {},"), "de": ("Hallo,", "Hallo {},")}[language]
    expected = hi.format(called) if called else hello
    if clean_name(given_name):  # the given name, cleaned to one line, is what is called
        assert called == clean_name(given_name)
    assert text.splitlines()[2] == expected  # verbatim in the text part
    assert _greeting_line(html) == expected  # the parsed HTML reads the same ...
    assert escape_text(expected) in html  # ... because it is escaped there
    assert address not in text.splitlines()[2] and address not in _greeting_line(html)


@functools.cache
def _one_post_edition(language: str) -> RenderedEdition:
    return EmailRenderer(site_settings(language=language)).render_edition(edition(posts(1)))


def test_preheader_is_hidden_and_starts_with_the_titles() -> None:
    _, _, html = render(edition(posts(2)))
    (pre,) = root(html).xpath("//div[contains(@class, 'preheader')]")
    assert "display:none" in pre.get("style").replace(" ", "")
    assert pre.text_content().startswith("Post 1 · Post 2")


def test_view_in_browser_links_to_the_edition_in_both_parts() -> None:
    content = edition(posts(2))
    _, text, html = render(content)
    url = f"https://news.example.com/archive/{content.key}/"
    links = root(html).xpath("//a[normalize-space() = 'View in your browser']/@href")
    assert links and set(links) == {url}
    assert f"View in your browser: {url}" in text
    assert "ann@example.org" not in text + html  # no address in the body


def test_thumbnail_beside_the_summary_and_logo() -> None:
    post = make_post(1, "With image", image="/img/a.png", image_alt="A red kite")
    plain = make_post(2, "Without image")
    _, _, html = render(edition([post, plain]), logo="img/logo.png")
    page = root(html)
    (img,) = page.xpath("//img[contains(@class, 'thumb')]")
    assert img.get("src") == f"{SITE_URL}/img/a.png" and img.get("alt") == "A red kite"
    assert (img.get("width"), img.get("height")) == ("120", "90")  # no layout shift
    row = img.xpath("ancestor::tr[1]")[0]
    assert "With image" in row.text_content()  # the same row as the post's text
    (logo,) = page.xpath("//img[contains(@class, 'logo')]")
    assert logo.get("src") == f"{SITE_URL}/feed-logo.png"  # its copy among the feeds
    assert logo.get("alt") == "Blog 002"
    assert logo.get("height") == "40"
    _, _, without = render(edition([plain]))
    assert not root(without).xpath("//img")


def test_long_words_may_wrap_anywhere() -> None:
    word = "x" * 76
    _, _, html = render(edition([make_post(1, word, summary=f"see {word}")]))
    page = root(html)
    for cls in ("title", "excerpt"):  # inherited from their cell, inlined for every client
        (node,) = page.xpath(f"//*[contains(@class, '{cls}')]")
        style = node.xpath("ancestor::td[1]")[0].get("style")
        assert "overflow-wrap: anywhere" in style and "word-break: break-word" in style
    (card,) = page.xpath("//table[contains(@class, 'container')]")
    assert "table-layout: fixed" in card.get("style")


def test_and_n_more_is_localised_in_both_parts() -> None:
    many = [make_post(n, f"Post {n}", ("Rust",), summary="x " * 140) for n in range(1, 301)]
    rendered = EmailRenderer(site_settings(language="de")).render_edition(edition(many))
    more = 300 - rendered.shown_count
    text, html = parts(parse(personalize(rendered, recipient(), MSGID, NOW)))
    sentence = f"…und {more} weitere Beiträge auf Blog 002."
    assert sentence in text and sentence in " ".join(root(html).text_content().split())


def test_language_is_part_of_the_edition_fingerprint() -> None:
    english = EmailRenderer(site_settings()).fingerprint()
    assert EmailRenderer(site_settings(language="de")).fingerprint() != english
    assert language("de").catalog_hash and not language("en").catalog_hash
