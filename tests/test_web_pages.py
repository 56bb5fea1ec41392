"""Subscriber pages a reader meets when something is wrong: the preferences form with every
error beside its field (input kept), the designed 404, invalid-link and expired-link pages."""

from __future__ import annotations

from datetime import timedelta

import lxml.html
from lxml.html import HtmlElement

from feedpipe.subscriptions.tokens import TokenPurpose
from tests.test_web import _prefs, subscribe, token
from tests.test_web_helpers import Web, web

__all__ = ["web"]


def parse(text: str) -> HtmlElement:
    return lxml.html.document_fromstring(text)


def described_error(doc: HtmlElement, element: HtmlElement) -> str:
    """The text of the error an invalid field points at (aria-describedby)."""
    (error,) = doc.xpath(f'//*[@id="{element.get("aria-describedby")}"]')
    return str(error.text_content()).strip()


def test_preferences_form_shows_every_error_beside_its_field_and_keeps_the_input(
    web: Web,
) -> None:
    url, csrf = _prefs(web, "pe@example.com")
    before = web.subscriber("pe@example.com")
    form = {
        "csrf": csrf,
        "categories": ["Python", "Knitting"],
        "frequency": "weekly",
        "weekday": "fri",
        "time": "25:00",
        "timezone": "Mars/Olympus",
        "action": "save",
    }
    r = web.client.post(url, data=form)
    assert r.status_code == 422
    doc = parse(r.text)
    summary = [str(li.text_content()) for li in doc.xpath('//div[@id="errors"]//li')]
    assert len(summary) == 3  # categories, time and time zone: every one, not the first
    time_field = doc.get_element_by_id("time")
    assert time_field.get("aria-invalid") == "true"
    assert "is not a time of day" in described_error(doc, time_field)
    zone = doc.get_element_by_id("timezone")
    assert zone.get("aria-invalid") == "true"
    assert "is not an IANA time zone" in described_error(doc, zone)
    categories = doc.get_element_by_id("categories")
    assert "unknown categories: Knitting" in described_error(doc, categories)
    assert all(
        box.get("aria-invalid") == "true" for box in categories.xpath('.//input[@type="checkbox"]')
    )
    # What the reader typed and chose is still there, not the stored values.
    assert time_field.get("value") == "25:00" and zone.get("value") == "Mars/Olympus"
    ticked = {b.get("value") for b in doc.xpath('//input[@name="categories"][@checked]')}
    assert ticked == {"Python"}
    (weekly,) = doc.xpath('//input[@name="frequency"][@checked]')
    assert weekly.get("value") == "weekly"
    (friday,) = doc.xpath('//select[@id="weekday"]/option[@selected]')
    assert friday.get("value") == "fri"
    valid = doc.get_element_by_id("weekday")
    assert valid.get("aria-invalid") is None and valid.get("aria-describedby") is None
    assert web.subscriber("pe@example.com") == before  # nothing was saved


def test_preferences_form_with_one_error_marks_only_that_field(web: Web) -> None:
    url, csrf = _prefs(web, "one@example.com")
    r = web.client.post(url, data={"csrf": csrf, "time": "7 o'clock", "timezone": "UTC"})
    assert r.status_code == 422
    doc = parse(r.text)
    invalid = doc.xpath('//*[@aria-invalid="true"]')
    assert [e.get("id") for e in invalid] == ["time"]
    assert "is not a time of day" in described_error(doc, invalid[0])


def test_preferences_form_marks_two_bad_fields(web: Web) -> None:
    """The same rule through the JSON problem: one entry per bad field (web/render.py)."""
    url, csrf = _prefs(web, "api@example.com")
    r = web.client.post(url, data={"csrf": csrf, "time": "99:99", "weekday": "someday"})
    doc = parse(r.text)
    assert {e.get("id") for e in doc.xpath('//*[@aria-invalid="true"]')} == {"time", "weekday"}


def page_parts(text: str) -> tuple[list[str], list[str], list[str]]:
    doc = parse(text)
    main = doc.get_element_by_id("main")
    headings = [str(h.text_content()) for h in main.xpath(".//h1")]
    lines = [str(p.text_content()) for p in main.xpath(".//p")]
    links = [str(a.get("href")) for a in main.xpath(".//a")]
    assert doc.xpath('//link[@rel="stylesheet"]/@href') == ["/static/feedpipe.css"]
    assert doc.xpath('//header[@class="site"]') and doc.xpath('//footer[@class="site"]')
    return headings, lines, links


def test_404_pages_are_designed_for_app_and_file_paths(web: Web) -> None:
    for path in ("/no-such-file.xml", "/archive/nope/", "/subscribe/extra"):
        r = web.client.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), path
        headings, lines, links = page_parts(r.text)
        assert headings == ["Page not found"], path
        assert any("mistyped" in line for line in lines)
        assert "/" in links and "/subscribe" in links


def test_invalid_and_expired_links_say_what_to_do_without_repeating_the_heading(
    web: Web,
) -> None:
    bad = web.client.get("/p/not-a-token")
    assert bad.status_code == 400
    headings, lines, links = page_parts(bad.text)
    assert headings == ["This link is not valid"]
    assert not any(headings[0].casefold() in line.casefold() for line in lines)
    assert "/subscribe" in links and "/" in links
    subscribe(web, "old@example.com")
    sub = web.subscriber("old@example.com")
    good = token(web, TokenPurpose.CONFIRM, sub.id)
    web.clock.advance(timedelta(days=30))
    expired = web.client.get(f"/c/{good}")
    assert expired.status_code == 410
    headings, lines, links = page_parts(expired.text)
    assert headings == ["This link has expired"]
    assert not any("this link has expired" in line.casefold() for line in lines)
    assert "/subscribe" in links
