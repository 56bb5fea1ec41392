"""Subscribe (double opt-in), confirm, unsubscribe (RFC 8058), preferences, admin and archive."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

import feedparser

from feedpipe.clock import FixedClock
from feedpipe.emails.mime import personalize_template
from feedpipe.model import SubscriberStatus
from feedpipe.subscriptions.tokens import TokenPurpose, make_token
from feedpipe.web.confirmation import render_confirmation
from feedpipe.web.guard import Limits
from feedpipe.web.mailer import ArchivedEdition
from feedpipe.web.ratelimit import Rate
from tests.test_web_helpers import ADMIN, SECRET, Web, make_web, web

__all__ = ["web"]

ACCEPTED = 202


def subscribe(w: Web, address: str, **extra: object) -> tuple[int, dict[str, object]]:
    r = w.client.post("/api/subscribe", json={"email": address, **extra})
    return r.status_code, r.json()


def confirm(w: Web, address: str) -> None:
    link = w.confirmations(address)[-1]
    assert w.client.post(link).status_code == 200


def token(w: Web, purpose: TokenPurpose, sub_id: int, at: datetime | None = None) -> str:
    return make_token(SECRET, purpose, sub_id, at or w.clock.now())


# -- subscribe ------------------------------------------------------------------------------------


def test_subscribe_queues_one_confirmation_and_stays_pending(web: Web) -> None:
    status, body = subscribe(web, "Ann@Example.com", name="Ann", categories=["Rust"])
    assert status == ACCEPTED and body["status"] == "accepted"
    sub = web.subscriber("ann@example.com")
    assert sub.status is SubscriberStatus.PENDING and sub.categories == ("rust",)
    assert len(web.confirmations()) == 1
    assert web.confirmations()[0].startswith("/c/")


def test_same_answer_for_new_pending_active_and_unsubscribed(web: Web) -> None:
    answers = [subscribe(web, "new@example.com")]
    answers.append(subscribe(web, "new@example.com"))  # pending now
    confirm(web, "new@example.com")
    answers.append(subscribe(web, "new@example.com"))  # active
    sub = web.subscriber("new@example.com")
    web.client.post(f"/u/{token(web, TokenPurpose.UNSUBSCRIBE, sub.id)}")
    answers.append(subscribe(web, "new@example.com"))  # unsubscribed → pending again
    assert all(a == answers[0] for a in answers)
    form = [web.client.post("/subscribe", data={"email": "new@example.com"}) for _ in range(2)]
    assert form[0].status_code == form[1].status_code == 200
    assert form[0].text == form[1].text
    assert web.subscriber("new@example.com").status is SubscriberStatus.PENDING


def test_confirmation_emails_are_limited_per_address(web: Web) -> None:
    for _ in range(3):
        subscribe(web, "again@example.com")
    assert len(web.confirmations("again@example.com")) == 1
    web.ticks.now += 901
    subscribe(web, "again@example.com")
    assert len(web.confirmations("again@example.com")) == 2


def test_active_subscriber_gets_no_confirmation_mail(web: Web) -> None:
    subscribe(web, "on@example.com")
    confirm(web, "on@example.com")
    web.ticks.now += 10_000
    subscribe(web, "on@example.com")
    assert len(web.confirmations("on@example.com")) == 1


def test_form_without_javascript_uses_the_default_time_zone(web: Web) -> None:
    r = web.client.post("/subscribe", data={"email": "nojs@example.com", "timezone": ""})
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert web.subscriber("nojs@example.com").timezone == "UTC"
    web.client.post("/subscribe", data={"email": "js@example.com", "timezone": "Asia/Kolkata"})
    assert web.subscriber("js@example.com").timezone == "Asia/Kolkata"
    web.client.post("/subscribe", data={"email": "odd@example.com", "timezone": "Etc/Unknown"})
    assert web.subscriber("odd@example.com").timezone == "UTC"


def test_subscribe_form_is_accessible_html(web: Web) -> None:
    r = web.client.get("/subscribe")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for field in ("email", "name", "timezone"):
        assert f'id="{field}"' in r.text
    assert '<label for="email">' in r.text and '<label for="name">' in r.text
    assert 'name="categories" value="Rust"' in r.text
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    embed = web.client.get("/subscribe?embed=1")
    assert "frame-ancestors *" in embed.headers["content-security-policy"]
    assert '<header class="site">' not in embed.text


def test_pending_subscribers_get_no_digest_until_confirmed(web: Web) -> None:
    subscribe(web, "wait@example.com")
    sub = web.subscriber("wait@example.com")
    web.clock.advance(timedelta(days=1))
    (web.posts / "fresh.md").write_text(
        "---\ntitle: Fresh\ndate: 2026-11-22T00:00:00Z\ncategories: [Rust]\n---\nNew.\n",
        encoding="utf-8",
    )
    web.fp.sync()
    web.clock.advance(timedelta(days=1))
    planned = web.fp.digests.plan()
    assert all(sub.id not in e.subscriber_ids for e in planned.editions)
    assert sub.id not in planned.watermarks
    confirm(web, "wait@example.com")
    later = web.fp.digests.plan(web.clock.now() + timedelta(days=1))
    assert any(sub.id in e.subscriber_ids for e in later.editions)


# -- bad input ------------------------------------------------------------------------------------


def test_invalid_email_is_422_with_the_reason(web: Web) -> None:
    status, body = subscribe(web, "not-an-address")
    assert status == 422
    assert "not a valid email address" in str(body["error"])
    assert body["fields"] == [{"field": "email", "message": body["error"]}]
    form = web.client.post("/subscribe", data={"email": "a@@b"})
    assert form.status_code == 422 and "not a valid email address" in form.text
    assert 'aria-invalid="true"' in form.text
    assert web.mailer.messages == []


def test_unknown_categories_are_422_with_the_known_ones(web: Web) -> None:
    status, body = subscribe(web, "cat@example.com", categories=["Rust", "Knitting"])
    assert status == 422
    assert "Knitting" in str(body["error"])
    known = body["known"]
    assert isinstance(known, list) and "Rust" in known and "Distributed Systems" in known
    form = web.client.post(
        "/subscribe", data={"email": "cat@example.com", "categories": "<b>Knit</b>"}
    )
    assert form.status_code == 422
    assert "&lt;b&gt;Knit&lt;/b&gt;" in form.text and "<b>Knit" not in form.text


def test_wrong_json_shapes_are_422_or_415(web: Web) -> None:
    assert web.client.post("/api/subscribe", content=b"{").status_code == 415
    bad = web.client.post(
        "/api/subscribe", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422
    extra = web.client.post("/api/subscribe", json={"email": "a@example.com", "admin": True})
    assert extra.status_code == 422 and extra.json()["fields"][0]["field"] == "admin"
    assert subscribe(web, "a@example.com", frequency="hourly")[0] == 422
    assert subscribe(web, "a@example.com", timezone="Mars/Olympus")[0] == 422


def test_oversized_bodies_are_413(web: Web) -> None:
    big = {"email": "big@example.com", "name": "x" * 20_000}
    assert web.client.post("/api/subscribe", json=big).status_code == 413
    assert (
        web.client.post(
            "/subscribe", data={"email": "b@example.com", "n": "y" * 20_000}
        ).status_code
        == 413
    )
    assert web.mailer.messages == []


def test_flooding_from_one_ip_is_429_until_the_window_passes(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    w = make_web(tmp_path, corpus_dir, clock, Limits(Rate(3, 60), Rate(100, 60), Rate(1, 900)))
    with w.client:
        codes = [subscribe(w, f"p{i}@example.com")[0] for i in range(4)]
        assert codes == [202, 202, 202, 429]
        r = w.client.post("/api/subscribe", json={"email": "q@example.com"})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60
        assert w.client.post("/subscribe", data={"email": "q@example.com"}).status_code == 429
        w.ticks.now += 61
        assert subscribe(w, "q@example.com")[0] == 202


def test_flooding_one_address_is_429(tmp_path: Path, corpus_dir: Path, clock: FixedClock) -> None:
    w = make_web(tmp_path, corpus_dir, clock, Limits(Rate(100, 60), Rate(2, 3600), Rate(1, 900)))
    with w.client:
        codes = [subscribe(w, "Victim@Example.com")[0] for _ in range(3)]
        assert codes == [202, 202, 429]
        assert subscribe(w, "victim@example.com")[0] == 429  # case does not help
        assert subscribe(w, "other@example.com")[0] == 202
        assert len(w.confirmations("Victim@example.com")) == 1


def test_html_and_crlf_in_names_never_reach_a_page_or_header(web: Web) -> None:
    evil = "<script>alert(1)</script>\r\nBcc: all@example.com"
    assert subscribe(web, "evil@example.com", name=evil)[0] == ACCEPTED
    sub = web.subscriber("evil@example.com")
    assert sub.name is not None and "\r" not in sub.name and "\n" not in sub.name
    page = web.client.get(web.confirmations()[0])
    assert "<script>alert" not in page.text
    prefs = web.client.get(f"/p/{token(web, TokenPurpose.PREFERENCES, sub.id)}")
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;" in prefs.text and "<script>alert" not in prefs.text
    )
    mail = render_confirmation(web.fp.settings, sub, "https://news.example.com/c/x")
    template = web.fp.outbox.renderer.single_template("c-1", mail.subject, mail.text, mail.html)
    recipient = web.fp.subscriptions.links.recipient(sub)
    raw = personalize_template(template, recipient, "<m@x>", web.clock.now())
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed.get_all("Bcc") is None
    assert parsed["To"].addresses[0].addr_spec == "evil@example.com"
    body = parsed.get_body(("html",))
    assert body is not None
    html = body.get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    for value in dict(web.client.get(web.confirmations()[0]).headers).values():
        assert "\r" not in value and "\n" not in value


# -- tokens ---------------------------------------------------------------------------------------


def test_forged_altered_foreign_and_expired_tokens_are_rejected(web: Web) -> None:
    subscribe(web, "tok@example.com")
    sub = web.subscriber("tok@example.com")
    good = token(web, TokenPurpose.CONFIRM, sub.id)
    forged = make_token("another-secret", TokenPurpose.CONFIRM, sub.id, web.clock.now())
    altered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    other_purpose = token(web, TokenPurpose.UNSUBSCRIBE, sub.id)
    for bad in (forged, altered, "nonsense", "a.b.c"):
        assert web.client.get(f"/c/{bad}").status_code == 400
        assert web.client.post(f"/c/{bad}").status_code == 400
        assert web.client.post(f"/u/{bad}").status_code == 400
        assert web.client.get(f"/p/{bad}").status_code == 400
    assert web.client.post(f"/c/{other_purpose}").status_code == 400  # purposes do not mix
    assert web.client.post(f"/u/{good}").status_code == 400
    assert web.client.get(f"/p/{good}").status_code == 400
    web.clock.advance(timedelta(days=8))
    expired = web.client.post(f"/c/{good}")
    assert expired.status_code == 410 and "expired" in expired.text
    assert web.subscriber("tok@example.com").status is SubscriberStatus.PENDING


def test_a_token_never_acts_on_another_subscriber(web: Web) -> None:
    subscribe(web, "a@example.com")
    subscribe(web, "b@example.com")
    confirm(web, "a@example.com")
    confirm(web, "b@example.com")
    a, b = web.subscriber("a@example.com"), web.subscriber("b@example.com")
    assert web.client.post(f"/u/{token(web, TokenPurpose.UNSUBSCRIBE, a.id)}").status_code == 200
    assert web.subscriber("a@example.com").status is SubscriberStatus.UNSUBSCRIBED
    assert web.subscriber("b@example.com").status is SubscriberStatus.ACTIVE
    # A token made before a subscriber existed (an id reused after a removal) is refused.
    old = token(web, TokenPurpose.UNSUBSCRIBE, b.id + 1, web.clock.now() - timedelta(days=1))
    subscribe(web, "c@example.com")
    c = web.subscriber("c@example.com")
    assert c.id == b.id + 1
    assert web.client.post(f"/u/{old}").status_code == 400
    assert web.subscriber("c@example.com").status is SubscriberStatus.PENDING


# -- confirm and unsubscribe ----------------------------------------------------------------------


def test_get_never_confirms_or_unsubscribes(web: Web) -> None:
    subscribe(web, "g@example.com")
    link = web.confirmations()[0]
    page = web.client.get(link)
    assert page.status_code == 200 and f'action="{link}"' in page.text and "<button" in page.text
    assert web.subscriber("g@example.com").status is SubscriberStatus.PENDING
    confirm(web, "g@example.com")
    sub = web.subscriber("g@example.com")
    assert sub.status is SubscriberStatus.ACTIVE
    unsub = f"/u/{token(web, TokenPurpose.UNSUBSCRIBE, sub.id)}"
    page = web.client.get(unsub)
    assert page.status_code == 200 and "<button" in page.text
    assert web.subscriber("g@example.com").status is SubscriberStatus.ACTIVE


def test_one_click_unsubscribe_needs_no_cookie_and_cancels_queued_mail(web: Web) -> None:
    subscribe(web, "one@example.com")
    confirm(web, "one@example.com")
    sub = web.subscriber("one@example.com")
    web.mailer.queue_digest(sub.id, sub.email, "edition-1")
    web.mailer.queue_digest(sub.id + 99, "someone@example.com", "edition-1")
    url = f"/u/{token(web, TokenPurpose.UNSUBSCRIBE, sub.id)}"
    web.client.cookies.clear()
    r = web.client.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and "set-cookie" not in r.headers
    assert web.subscriber("one@example.com").status is SubscriberStatus.UNSUBSCRIBED
    assert web.mailer.queued(to="one@example.com") == []
    assert len(web.mailer.queued(to="someone@example.com")) == 1
    again = web.client.post(url, content=b"List-Unsubscribe=One-Click")
    assert again.status_code == 200  # idempotent
    gmail = web.client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
    assert gmail.status_code == 200  # multipart/form-data too


def test_old_confirm_link_cannot_resubscribe(web: Web) -> None:
    subscribe(web, "old@example.com")
    link = web.confirmations()[0]
    confirm(web, "old@example.com")
    sub = web.subscriber("old@example.com")
    web.client.post(f"/u/{token(web, TokenPurpose.UNSUBSCRIBE, sub.id)}")
    assert web.client.post(link).status_code == 409
    assert web.subscriber("old@example.com").status is SubscriberStatus.UNSUBSCRIBED


# -- preferences ----------------------------------------------------------------------------------


def _prefs(web: Web, address: str) -> tuple[str, str]:
    subscribe(web, address)
    confirm(web, address)
    sub = web.subscriber(address)
    url = f"/p/{token(web, TokenPurpose.PREFERENCES, sub.id)}"
    page = web.client.get(url).text
    csrf = page.split('name="csrf" value="')[1].split('"')[0]
    return url, csrf


def test_preferences_change_categories_and_schedule(web: Web) -> None:
    url, csrf = _prefs(web, "p@example.com")
    form = {
        "csrf": csrf,
        "categories": ["Rust", "Python"],
        "frequency": "weekly",
        "weekday": "fri",
        "time": "07:30",
        "timezone": "Europe/Berlin",
        "action": "save",
    }
    r = web.client.post(url, data=form)
    assert r.status_code == 200 and "Saved." in r.text
    sub = web.subscriber("p@example.com")
    assert sub.categories == ("rust", "python")
    assert sub.schedule.describe() == "weekly on Friday at 07:30 Europe/Berlin"
    r = web.client.post(url, data={"csrf": csrf, "time": "25:00"})
    assert r.status_code == 422 and "is not a time of day" in r.text
    r = web.client.post(url, data={"csrf": csrf, "categories": "Knitting"})
    assert r.status_code == 422 and "known: " in r.text


def test_preferences_offer_every_cadence(web: Web) -> None:
    url, csrf = _prefs(web, "m@example.com")
    page = web.client.get(url).text
    assert all(f'value="{f}"' in page for f in ("instant", "daily", "weekly", "monthly"))
    assert 'name="month_day"' in page and 'name="min_posts"' in page
    form = {"csrf": csrf, "frequency": "monthly", "month_day": "last", "min_posts": "2",
            "max_wait": "10d", "action": "save"}  # fmt: skip
    r = web.client.post(url, data=form)
    assert r.status_code == 200 and "monthly on the last day at" in r.text
    sub = web.subscriber("m@example.com")
    assert (sub.month_day, sub.min_posts, sub.max_wait) == (0, 2, timedelta(days=10))
    r = web.client.post(url, data={"csrf": csrf, "max_wait": "soon"})
    assert r.status_code == 422 and "is not a wait such as 7d" in r.text


def test_preferences_pause_and_resume(web: Web) -> None:
    url, csrf = _prefs(web, "pause@example.com")
    r = web.client.post(url, data={"csrf": csrf, "action": "pause"})
    assert r.status_code == 200 and "Resume digests" in r.text
    sub = web.subscriber("pause@example.com")
    assert sub.status is SubscriberStatus.PAUSED  # not planned while paused
    assert sub.id not in web.fp.digests.plan(web.clock.now() + timedelta(days=2)).watermarks
    subscribe(web, "pause@example.com")  # a paused address asking again gets no mail
    assert len(web.confirmations("pause@example.com")) == 1
    r = web.client.post(url, data={"csrf": csrf, "action": "resume"})
    assert r.status_code == 200 and "Pause digests" in r.text
    assert web.subscriber("pause@example.com").status is SubscriberStatus.ACTIVE


def test_preferences_need_the_csrf_value_of_their_own_token(web: Web) -> None:
    url, csrf = _prefs(web, "x@example.com")
    _, other_csrf = _prefs(web, "y@example.com")
    for data in ({}, {"csrf": "0" * 64}, {"csrf": other_csrf}):
        r = web.client.post(url, data={**data, "frequency": "weekly"})
        assert r.status_code == 403
    assert web.subscriber("x@example.com").frequency.value == "daily"
    assert web.client.post(url, data={"csrf": csrf, "frequency": "weekly"}).status_code == 200
    assert web.subscriber("x@example.com").frequency.value == "weekly"


def test_pending_subscriber_cannot_resume_past_confirmation(web: Web) -> None:
    subscribe(web, "sneak@example.com")
    sub = web.subscriber("sneak@example.com")
    url = f"/p/{token(web, TokenPurpose.PREFERENCES, sub.id)}"
    csrf = web.client.get(url).text.split('name="csrf" value="')[1].split('"')[0]
    web.client.post(url, data={"csrf": csrf, "action": "resume"})
    assert web.subscriber("sneak@example.com").status is SubscriberStatus.PENDING


# -- archive, admin, openapi ----------------------------------------------------------------------


def test_archive_lists_newest_first_with_its_own_atom_feed(web: Web) -> None:
    t = datetime(2026, 11, 1, 8, tzinfo=UTC)
    for day, key in ((0, "aaa"), (7, "bbb"), (3, "ccc")):
        web.mailer.archive.append(
            ArchivedEdition(key, f"Digest <{key}>", t + timedelta(days=day), f"<p>{key}</p>", 2)
        )
    page = web.client.get("/archive/")
    assert page.status_code == 200
    assert page.text.index("/archive/bbb/") < page.text.index("/archive/ccc/")
    assert page.text.index("/archive/ccc/") < page.text.index("/archive/aaa/")
    assert "Digest &lt;bbb&gt;" in page.text
    atom = web.client.get("/archive/atom.xml")
    assert atom.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(atom.content)
    assert not parsed.bozo and parsed.entries[0].title == "Digest <bbb>"
    one = web.client.get("/archive/ccc/")
    assert one.status_code == 200 and one.text == "<p>ccc</p>"
    assert "sandbox" in one.headers["content-security-policy"]
    assert web.client.get("/archive/nope/").status_code == 404
    assert web.client.get("/archive/..%2f..%2fx/").status_code == 404


def test_admin_endpoints_need_the_bearer_token(web: Web) -> None:
    for method, path in (("GET", "/api/admin/subscribers"), ("GET", "/api/admin/outbox")):
        assert web.client.request(method, path).status_code == 401
        wrong = web.client.request(method, path, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 403
    assert web.client.post("/api/admin/build").status_code == 401
    code, _ = subscribe(
        web, "adm@example.com", frequency="monthly", month_day="last", min_posts=2, max_wait="36h"
    )
    assert code == ACCEPTED
    web.settle()  # the request is handled after its reply
    auth = {"authorization": f"Bearer {ADMIN}"}
    listed = web.client.get("/api/admin/subscribers?status=pending", headers=auth).json()
    assert listed["count"] == 1 and listed["subscribers"][0]["email"] == "adm@example.com"
    got = listed["subscribers"][0]
    assert (got["frequency"], got["month_day"], got["min_posts"], got["max_wait"]) == (
        "monthly", "last", 2, "36h"
    )  # fmt: skip
    assert got["schedule"].startswith("monthly on the last day at ")
    assert web.client.get("/api/admin/subscribers?status=x", headers=auth).status_code == 422
    assert web.client.get("/api/admin/outbox", headers=auth).json() == {"counts": {"queued": 1}}
    built = web.client.post("/api/admin/build", headers=auth)
    assert built.status_code == 200 and built.json()["feeds"] > 0
    runs = web.fp.last_runs()  # `feedpipe status` shows the web's build like any other run
    assert runs["build"].worker.startswith("web admin@") and runs["build"].outcome == "ok"
    assert runs["build"].counts["feeds"] == built.json()["feeds"]
    assert runs["sync"].worker.startswith("web admin@")


def test_admin_is_disabled_without_a_configured_token(
    tmp_path: Path, corpus_dir: Path, clock: FixedClock
) -> None:
    from feedpipe.web import MemoryMailer, create_app
    from tests.test_web_helpers import TestClient

    w = make_web(tmp_path, corpus_dir, clock)
    client = TestClient(create_app(w.fp, MemoryMailer()))
    r = client.get("/api/admin/outbox", headers={"authorization": "Bearer anything"})
    assert r.status_code == 403 and "FEEDPIPE_ADMIN_TOKEN" in r.json()["error"]


def test_openapi_describes_the_json_endpoints(web: Web) -> None:
    doc = web.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert {
        "/api/subscribe",
        "/api/admin/subscribers",
        "/api/admin/outbox",
        "/api/admin/build",
    } <= set(doc["paths"])
    assert "SubscribeBody" in doc["components"]["schemas"]


def test_pages_send_no_referrer_and_deny_framing(web: Web) -> None:
    subscribe(web, "h@example.com")
    r = web.client.get(web.confirmations()[0])
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert urlsplit(str(r.url)).path.startswith("/c/")
