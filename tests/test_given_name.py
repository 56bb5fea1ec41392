"""The given name ("What should we call you?"): the subscribe form, the JSON API, the
preferences page, and the greeting of the digests actually sent."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path

import lxml.html
import pytest

from feedpipe.clock import FixedClock
from feedpipe.mail.memory import MemoryTransport
from feedpipe.service import Feedpipe
from feedpipe.subscriptions.fields import MAX_NAME_CHARS, PreferencesInput
from tests.test_outbox_fill import DUE, T0, small_site
from tests.test_web import _prefs, subscribe
from tests.test_web_helpers import Web, web

__all__ = ["web"]


def _doc(text: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(text)


def test_the_subscribe_form_asks_what_to_call_you_and_stores_it(web: Web) -> None:
    doc = _doc(web.client.get("/subscribe").text)
    (label,) = doc.xpath('//label[@for="given_name"]')
    assert label.text_content().startswith("What should we call you?")
    field = doc.get_element_by_id("given_name")
    assert field.get("maxlength") == str(MAX_NAME_CHARS) and field.get("name") == "given_name"
    sent = {"email": "form@example.com", "name": "Ann Example", "given_name": " Annie\r\n"}
    assert web.client.post("/subscribe", data=sent).status_code == 200
    sub = web.subscriber("form@example.com")
    assert (sub.name, sub.given_name) == ("Ann Example", "Annie")
    assert web.client.post("/subscribe", data={"email": "plain@example.com"}).status_code == 200
    assert web.subscriber("plain@example.com").given_name is None


def test_a_given_name_over_200_characters_is_refused_on_the_form_and_the_api(web: Web) -> None:
    long = "g" * (MAX_NAME_CHARS + 1)
    form = web.client.post("/subscribe", data={"email": "long@example.com", "given_name": long})
    assert form.status_code == 422
    field = _doc(form.text).get_element_by_id("given_name")
    assert field.get("aria-invalid") == "true" and field.get("value") == long  # input kept
    assert "longer than 200 characters" in form.text
    api = web.client.post("/api/subscribe", json={"email": "long@example.com", "given_name": long})
    assert api.status_code == 422
    assert [f["field"] for f in api.json()["fields"]] == ["given_name"]
    assert subscribe(web, "ok@example.com", given_name=long[:-1])[0] == 202
    assert web.subscriber("ok@example.com").given_name == long[:-1]
    assert web.mailer.queued(to="long@example.com") == []


def test_the_preferences_page_shows_changes_and_clears_the_given_name(web: Web) -> None:
    url, csrf = _prefs(web, "pref@example.com")
    doc = _doc(web.client.get(url).text)
    (label,) = doc.xpath('//label[@for="given_name"]')
    assert label.text_content().startswith("What should we call you?")
    assert doc.get_element_by_id("given_name").get("value") == ""
    saved = web.client.post(url, data={"csrf": csrf, "given_name": "<b>Zoë</b>"})
    assert saved.status_code == 200
    assert web.subscriber("pref@example.com").given_name == "<b>Zoë</b>"
    shown = _doc(web.client.get(url).text).get_element_by_id("given_name")
    assert shown.get("value") == "<b>Zoë</b>"  # escaped in the page, read back as typed
    assert "<b>Zoë</b>" not in web.client.get(url).text
    # a form without the field (an older page) keeps it; an empty field clears it
    assert web.client.post(url, data={"csrf": csrf, "time": "09:15"}).status_code == 200
    assert web.subscriber("pref@example.com").given_name == "<b>Zoë</b>"
    assert web.client.post(url, data={"csrf": csrf, "given_name": ""}).status_code == 200
    assert web.subscriber("pref@example.com").given_name is None


def test_a_bad_given_name_on_the_preferences_page_is_marked_and_changes_nothing(
    web: Web,
) -> None:
    url, csrf = _prefs(web, "bad@example.com")
    before = web.subscriber("bad@example.com")
    long = "x" * (MAX_NAME_CHARS + 1)
    r = web.client.post(url, data={"csrf": csrf, "given_name": long, "time": "25:00"})
    assert r.status_code == 422
    doc = _doc(r.text)
    invalid = [e.get("id") for e in doc.xpath('//*[@aria-invalid="true"]')]
    assert invalid == ["given_name", "time"]  # every bad field, in form order
    field = doc.get_element_by_id("given_name")
    assert field.get("value") == long
    (error,) = doc.xpath(f'//*[@id="{field.get("aria-describedby")}"]')
    assert "the given name is longer than 200 characters" in error.text_content()
    assert web.subscriber("bad@example.com") == before


# -- the digests people receive ------------------------------------------------------------------


@pytest.fixture
def site(store_url: str, tmp_path: Path) -> Iterator[Feedpipe]:
    """small_site (two new posts, s0..s3 subscribed before them) with names and given names."""
    with small_site(store_url, tmp_path, {"outbox_dir": str(tmp_path / "eml")}) as fp:
        assert isinstance(fp.clock, FixedClock)
        subs = fp.subscriptions
        subs.update("s0@example.com", PreferencesInput(categories=None, given_name="Ann"))
        fp.clock.set(T0)  # the named readers subscribe before the posts too
        for address, name, given in [
            ("one@example.com", "Søren", None),
            ("two@example.com", "Ann Example", None),
            ("three@example.com", "Ann Example", "Annie"),
            ("four@example.com", "Zoë Müller", "<b>Zoë</b> & co"),
        ]:
            subs.add({"email": address, "name": name, "given_name": given, "status": "active"})
        fp.clock.set(DUE)
        yield fp


def _sent(fp: Feedpipe) -> dict[str, EmailMessage]:
    transport = MemoryTransport()
    asyncio.run(fp.outbox.dispatch(transport))
    out: dict[str, EmailMessage] = {}
    for envelope in transport.sent:
        message = email.message_from_bytes(envelope.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        out[envelope.recipient] = message
    return out


def _greetings(message: EmailMessage) -> tuple[str, str, str]:
    """The greeting line of the text part, of the parsed HTML part, and the raw HTML."""
    text_part, html_part = message.get_body(("plain",)), message.get_body(("html",))
    assert text_part is not None and html_part is not None
    text = str(text_part.get_content()).replace("\r\n", "\n")
    html = str(html_part.get_content())
    (greeting,) = _doc(html).xpath("//p[contains(@class, 'h1')]/following-sibling::p[1]")
    return text.splitlines()[2], str(greeting.text or ""), html


def test_sent_digests_greet_by_given_name_then_one_word_name_then_neutrally(
    site: Feedpipe,
) -> None:
    assert site.outbox.fill(DUE).queued == 8
    sent = _sent(site)
    expected = {
        "s0@example.com": "Hi Ann,",  # given name set by the operator
        "s1@example.com": "Hello,",  # no name at all
        "one@example.com": "Hi Søren,",  # one word
        "two@example.com": "Hello,",  # several words: no guess
        "three@example.com": "Hi Annie,",  # the given name wins
        "four@example.com": "Hi <b>Zoë</b> & co,",
    }
    for address, greeting in expected.items():
        text, html_text, _ = _greetings(sent[address])
        assert text == greeting and html_text == greeting, address
        assert address not in text and address not in html_text
    assert "Hi &lt;b&gt;Zoë&lt;/b&gt; &amp; co," in _greetings(sent["four@example.com"])[2]
    assert sent["three@example.com"]["To"].addresses[0].display_name == "Ann Example"
