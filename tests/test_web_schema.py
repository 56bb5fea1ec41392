"""schemathesis against /openapi.json: generated requests never get a server error.

Driven through Hypothesis directly: schemathesis' pytest plugin does not load on pytest 9.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedpipe.clock import FixedClock
from feedpipe.emails.mime import clean_name, format_to
from feedpipe.model import SubscriberStatus
from feedpipe.subscriptions.fields import MAX_NAME_CHARS
from tests.test_web_helpers import ADMIN, make_web

EXAMPLES = 40


def _check_operation(operation: Any) -> int:
    calls = 0

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        nonlocal calls
        for extra in ({}, {"Authorization": f"Bearer {ADMIN}"}):
            case.headers = {**(case.headers or {}), **extra}
            response = case.call()
            calls += 1
            assert response.status_code < 500, (case.method, case.path, response.text)

    run()
    return calls


def test_no_server_errors(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    schema = schemathesis.openapi.from_asgi("/openapi.json", w.app)
    # an Err (an operation schemathesis cannot load) has no .ok(): the test fails on it
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    paths = {(op.path, op.method.lower()) for op in operations}
    assert paths >= {
        ("/api/subscribe", "post"),
        ("/api/admin/build", "post"),
        ("/api/admin/subscribers/{email}", "patch"),
    }
    calls = sum(_check_operation(op) for op in operations)
    assert calls >= len(operations) * 2
    w.fp.close()


# -- spec and input gaps (issue 15) -------------------------------------------------------------


def test_openapi_lists_every_status_and_every_4xx(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    doc = w.client.get("/openapi.json").json()
    params = doc["paths"]["/api/admin/subscribers"]["get"]["parameters"]
    assert params[0]["schema"]["enum"] == [s.value for s in SubscriberStatus]  # paused too
    codes = {
        path: {method: set(op["responses"]) for method, op in item.items()}
        for path, item in doc["paths"].items()
    }
    assert codes["/api/subscribe"]["post"] >= {"202", "413", "415", "422", "429"}
    assert codes["/api/admin/subscribers"]["get"] >= {"200", "401", "403", "422"}
    assert codes["/api/admin/build"]["post"] >= {"200", "401", "403", "413"}
    assert "/api/subscribe/challenge" in codes
    patch = "/api/admin/subscribers/{email}"
    assert codes[patch]["patch"] >= {"200", "401", "403", "404", "413", "415", "422"}
    # what the endpoints answer is documented
    auth = {"authorization": f"Bearer {ADMIN}"}
    bad_token = {"authorization": "Bearer x"}
    seen = {
        ("/api/subscribe", "post"): [
            w.client.post("/api/subscribe", content=b"x").status_code,
            w.client.post("/api/subscribe", json={"email": "nope"}).status_code,
            w.client.post("/api/subscribe", json={"email": "a@example.com", "n": "x" * 20_000}),
        ],
        ("/api/admin/subscribers", "get"): [
            w.client.get("/api/admin/subscribers").status_code,
            w.client.get("/api/admin/subscribers", headers={"authorization": "Bearer x"}),
            w.client.get("/api/admin/subscribers?status=x", headers=auth).status_code,
        ],
        (patch, "patch"): [
            w.client.patch("/api/admin/subscribers/a@example.com", json={}),
            w.client.patch("/api/admin/subscribers/a@example.com", json={}, headers=bad_token),
            w.client.patch("/api/admin/subscribers/nobody@example.com", json={}, headers=auth),
            w.client.patch("/api/admin/subscribers/x", content=b"a", headers=auth),
            w.client.patch("/api/admin/subscribers/x", json={"time": 1}, headers=auth),
            w.client.patch("/api/admin/subscribers/x", json={"n": "x" * 20_000}, headers=auth),
        ],
    }
    for (path, method), answers in seen.items():
        for answer in answers:
            code = answer if isinstance(answer, int) else answer.status_code
            assert str(code) in codes[path][method], (path, code)
    w.fp.close()


def test_413_is_a_json_problem_and_the_page_says_it(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    big = w.client.post("/api/subscribe", json={"email": "big@example.com", "name": "x" * 20_000})
    assert big.status_code == 413
    assert big.headers["content-type"].startswith("application/json")
    assert "larger than" in big.json()["error"]
    form = w.client.post("/subscribe", data={"email": "b@example.com", "n": "y" * 20_000})
    assert form.status_code == 413 and form.headers["content-type"].startswith("text/html")
    assert "larger than" in form.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: Starlette's own limit ends it
        yield b'{"email": "c@example.com", "name": "'
        for _ in range(40):
            yield b"z" * 1000
        yield b'"}'

    streamed = w.client.post(
        "/api/subscribe", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and "error" in streamed.json()
    w.fp.close()


def test_the_form_caps_the_name_as_the_api_does(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock)
    long = "n" * (MAX_NAME_CHARS + 1)
    form = w.client.post("/subscribe", data={"email": "long@example.com", "name": long})
    assert form.status_code == 422 and "200 characters" in form.text
    api = w.client.post("/api/subscribe", json={"email": "long@example.com", "name": long})
    assert api.status_code == 422
    ok = w.client.post("/subscribe", data={"email": "ok@example.com", "name": long[:-1]})
    assert ok.status_code == 200
    assert w.subscriber("ok@example.com").name == long[:-1]
    assert w.mailer.queued(to="long@example.com") == []
    w.fp.close()


@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=60))
@settings(max_examples=300, deadline=None)
def test_a_name_reads_back_as_typed_in_to_even_when_it_looks_encoded(text: str) -> None:
    name = clean_name(text)
    for candidate in (name, f"=?utf-8?q?{name}?=", f"=?utf-8?b?{name}?= x"):
        candidate = clean_name(candidate)
        value = format_to(candidate, "ann@example.com")
        # RFC 2047 decoding (email.header; Python's policy parser keeps the space between
        # adjacent encoded words, which RFC 2047 says to drop)
        phrase, address = email.utils.parseaddr(value)
        assert address == "ann@example.com"
        assert str(make_header(decode_header(phrase))) == candidate, value
