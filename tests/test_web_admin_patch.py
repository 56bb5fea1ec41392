"""PATCH /api/admin/subscribers/{email} over real HTTP (uvicorn on 127.0.0.1): auth, 404, 415,
422 naming each field, and the same validation as the preferences page and the CSV import."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.errors import ValidationError
from feedpipe.subscriptions.fields import new_subscriber
from feedpipe.subscriptions.tokens import TokenPurpose
from feedpipe.web.models import SubscriberOut
from tests.test_web import token
from tests.test_web_helpers import ADMIN, Web, web
from tests.test_web_readers import serving

__all__ = ["web"]
AUTH = {"authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def http(web: Web) -> Iterator[tuple[Web, httpx.Client]]:
    """The app under uvicorn, an HTTP client for it, and one active subscriber, ann@."""
    web.fp.subscriptions.add(
        {"email": "ann@example.com", "name": "Ann Example", "status": "active"}
    )
    with serving(web) as base, httpx.Client(base_url=base, timeout=30) as client:
        yield web, client


def patch(client: httpx.Client, body: object, email: str = "ann@example.com", **kw: Any) -> Any:
    headers = {**AUTH, **kw.pop("headers", {})}
    return client.patch(f"/api/admin/subscribers/{quote(email)}", json=body, headers=headers)


def test_patch_changes_the_schedule_categories_and_given_name(
    http: tuple[Web, httpx.Client],
) -> None:
    w, client = http
    body = {
        "frequency": "monthly",
        "month_day": "last",
        "time": "18:30",
        "timezone": "America/St_Johns",
        "min_posts": 3,
        "max_wait": "36h",
        "categories": ["Rust", "python"],
        "given_name": "Annie",
    }
    r = patch(client, body)
    assert r.status_code == 200, r.text
    out = SubscriberOut.model_validate(r.json())  # the documented shape
    assert (out.frequency, out.month_day, out.time, out.timezone) == (
        "monthly", "last", "18:30", "America/St_Johns"
    )  # fmt: skip
    assert (out.min_posts, out.max_wait, out.given_name) == (3, "36h", "Annie")
    assert out.schedule == (
        "monthly on the last day at 18:30 America/St_Johns, once 3 posts are new (at most 36h)"
    )
    sub = w.fp.subscriptions.get("ann@example.com")
    assert sub.categories == ("rust", "python") and sub.given_name == "Annie"
    assert sub.status.value == "active" and sub.name == "Ann Example"  # untouched
    listed = client.get("/api/admin/subscribers", headers=AUTH).json()["subscribers"]
    assert listed[0]["given_name"] == "Annie" and listed[0]["month_day"] == "last"


def test_absent_fields_stay_null_keeps_and_empty_given_name_clears(
    http: tuple[Web, httpx.Client],
) -> None:
    w, client = http
    patch(client, {"frequency": "weekly", "weekday": "fri", "categories": ["Rust"]})
    assert patch(client, {"given_name": "Annie"}).status_code == 200
    sub = w.fp.subscriptions.get("ann@example.com")
    assert (sub.frequency.value, sub.weekday, sub.categories) == ("weekly", 4, ("rust",))
    assert patch(client, {"time": "06:00", "categories": None}).json()["given_name"] == "Annie"
    assert w.fp.subscriptions.get("ann@example.com").categories == ("rust",)
    assert patch(client, {"given_name": None}).json()["given_name"] is None
    patch(client, {"given_name": "Annie"})
    assert patch(client, {"given_name": ""}).json()["given_name"] is None
    assert patch(client, {"categories": []}).json()["categories"] == []  # [] = every post
    assert patch(client, {"min_posts": "2", "month_day": 15}).json()["min_posts"] == 2
    assert patch(client, {}).status_code == 200  # nothing to change


def test_patch_needs_the_token_and_json_and_an_existing_subscriber(
    http: tuple[Web, httpx.Client],
) -> None:
    _, client = http
    url = "/api/admin/subscribers/ann%40example.com"
    assert client.patch(url, json={"time": "07:00"}).status_code == 401
    wrong = client.patch(url, json={}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403 and "error" in wrong.json()
    missing = patch(client, {"time": "07:00"}, email="nobody@example.com")
    assert missing.status_code == 404
    assert missing.json()["error"] == "nobody@example.com is not subscribed"
    form = client.patch(url, content=b"time=07:00", headers={**AUTH, "content-type": "text/plain"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    merge = client.patch(
        url,
        content=b'{"time": "07:05"}',
        headers={**AUTH, "content-type": "application/merge-patch+json"},
    )
    assert merge.status_code == 200 and merge.json()["time"] == "07:05"
    big = patch(client, {"given_name": "x" * 20_000})
    assert big.status_code == 413 and "error" in big.json()


def test_every_bad_field_is_a_422_naming_it_and_nothing_changes(
    http: tuple[Web, httpx.Client],
) -> None:
    w, client = http
    before = w.fp.subscriptions.get("ann@example.com")
    bad = {
        "given_name": "g" * 201,
        "categories": ["Rust", "Knitting"],
        "frequency": "hourly",
        "weekday": "someday",
        "month_day": 29,
        "min_posts": 0,
        "max_wait": "forever",
        "time": "25:00",
        "timezone": "Mars/Olympus",
    }
    r = patch(client, bad)
    assert r.status_code == 422
    problem = r.json()
    named = [f["field"] for f in problem["fields"]]
    assert named == [*bad]  # every one, in form order
    assert "Knitting" in problem["error"] and "Rust" in problem["known"]
    for field in bad:
        one = patch(client, {field: bad[field]})
        assert one.status_code == 422 and [f["field"] for f in one.json()["fields"]] == [field]
    assert w.fp.subscriptions.get("ann@example.com") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"min_posts": True}, "min_posts"),
        ({"min_posts": 2.5}, "min_posts"),
        ({"time": 700}, "time"),
        ({"categories": "Rust"}, "categories"),
        ({"status": "active"}, "status"),  # not a preference: the status has its own actions
        ({"email": "new@example.com"}, "email"),
    ],
)
def test_wrong_json_types_and_unknown_keys_are_422_naming_the_field(
    http: tuple[Web, httpx.Client], body: dict[str, object], field: str
) -> None:
    _, client = http
    r = patch(client, body)
    assert r.status_code == 422
    assert [f["field"] for f in r.json()["fields"]] == [field]


# -- one validation: the API, the preferences page and the CSV import agree ----------------------

FIELD_VALUES = {
    "frequency": ["daily", "Weekly", " monthly ", "instant", "hourly", "0"],
    "weekday": ["mon", "Friday", "6", "7", "someday", "su"],
    "time": ["08:00", "7:05", "23:59", "24:00", "8", "07:60"],
    "timezone": ["UTC", "Europe/Berlin", "Asia/Kolkata", "Mars/Base", "utc", "../etc", "Europe"],
    "month_day": ["1", "28", "last", "LAST", "29", "0", "first"],
    "min_posts": ["1", "100", "101", "0", "-1", "three"],
    "max_wait": ["7d", "36h", "1h", "0h", "367d", "12", "forever"],
    "given_name": ["Ann", "山田", " Zoë \t", "x" * 200, "x" * 201],
}
CASES = st.sampled_from(sorted(FIELD_VALUES)).flatmap(
    lambda f: st.tuples(
        st.just(f), st.sampled_from(FIELD_VALUES[f]) | st.text(max_size=12).filter(str.strip)
    )
)


def _page_errors(client: httpx.Client, w: Web, field: str, value: str) -> dict[str, str]:
    """The preferences page's answer: {field: message} of its error summary."""
    sub = w.fp.subscriptions.get("page@example.com")
    url = f"/p/{token(w, TokenPurpose.PREFERENCES, sub.id)}"
    page = lxml.html.document_fromstring(client.get(url).text)
    csrf = next(e.get("value") for e in page.iter("input") if e.get("name") == "csrf")
    r = client.post(url, data={"csrf": csrf, field: value})
    assert r.status_code in (200, 422)
    doc = lxml.html.document_fromstring(r.text)
    summary = [div for div in doc.iter("div") if div.get("id") == "errors"]
    links = [a for box in summary for a in box.iter("a")]
    return {str(a.get("href"))[1:]: "".join(map(str, a.itertext())) for a in links}


def _csv_error(w: Web, field: str, value: str) -> str | None:
    index = w.fp.subscriptions.categories()
    row = {"email": "csv@example.com", field: value}
    try:
        new_subscriber(row, w.fp.settings.digest, index, w.clock.now())
    except ValidationError as exc:
        return str(exc)
    return None


def test_the_api_page_and_csv_import_accept_and_refuse_the_same_values(
    http: tuple[Web, httpx.Client],
) -> None:
    w, client = http
    w.fp.subscriptions.add({"email": "page@example.com", "status": "active"})
    seen: set[tuple[str, int]] = set()

    @given(case=CASES)
    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def agree(case: tuple[str, str]) -> None:
        field, value = case
        api = patch(client, {field: value})
        assert api.status_code in (200, 422), api.text
        seen.add((field, api.status_code))
        api_errors = {f["field"]: f["message"] for f in api.json().get("fields", [])}
        assert _page_errors(client, w, field, value) == api_errors, (field, value)
        csv = _csv_error(w, field, value)
        assert (csv is None) == (api.status_code == 200), (field, value, csv)
        if csv is not None:
            assert api_errors == {field: csv}

    agree()
    assert {code for _, code in seen} == {200, 422} and len({f for f, _ in seen}) == len(
        FIELD_VALUES
    )
