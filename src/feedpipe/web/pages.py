"""HTML routes: subscribe form, confirm, unsubscribe, preferences and the digest archive."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from feedpipe.errors import InvalidTransitionError, NotFoundError, ValidationError
from feedpipe.model import Action, Subscriber, SubscriberStatus
from feedpipe.model.subscribers import wait_text
from feedpipe.subscriptions.fields import (
    DAY_NAMES,
    CategoryIndex,
    FieldErrors,
    PreferencesInput,
    SubscribeInput,
    field_of,
    parse_timezone,
)
from feedpipe.subscriptions.service import SubscriptionService
from feedpipe.subscriptions.tokens import InvalidTokenError, TokenPurpose
from feedpipe.web.guard import HONEYPOT, Guard, Proof
from feedpipe.web.mailer import Mailer
from feedpipe.web.render import environment, first, form_fields, message, page

EDITION_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
ARCHIVE_LIMIT = 500
CHECK_INBOX = (
    "If this address can subscribe, a confirmation link is on its way to it.",
    "Follow the link in that email to start your digest; nothing else arrives until you do.",
)


def _subs(request: Request) -> SubscriptionService:
    subs: SubscriptionService = request.app.state.subscriptions
    return subs


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


def _known(subs: SubscriptionService) -> list[str]:
    return subs.categories().sorted_names()


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def index(request: Request) -> Response:
    return page(request, "index.html.j2", title="Feeds and digest")


# -- subscribe ----------------------------------------------------------------------------------


def _subscribe_page(
    request: Request, values: dict[str, Any], problems: list[tuple[str, str]], status: int = 200
) -> HTMLResponse:
    embed = request.query_params.get("embed") == "1"
    return page(
        request,
        "subscribe.html.j2",
        status,
        frames="*" if embed else "'self'",
        title="Subscribe",
        embed=embed,
        known=values.pop("known"),
        values=values,
        problems=problems,
        bad={field for field, _ in problems},
        default_timezone=request.app.state.settings.digest.timezone,
        honeypot=HONEYPOT,
        pow_bits=_guard(request).pow_bits,
        pow_challenge=_guard(request).challenge(),
    )


async def subscribe_form(request: Request) -> Response:
    known = await run_in_threadpool(_known, _subs(request))
    values = {"email": "", "name": "", "given_name": "", "categories": (), "timezone": ""}
    values["known"] = known
    values["frequency"] = request.app.state.settings.digest.frequency
    return _subscribe_page(request, values, [])


def _browser_zone(text: str) -> str | None:
    """The hidden field's zone; an unusable one falls back to the configured default."""
    try:
        return parse_timezone(text) if text.strip() else None
    except ValidationError:
        return None


async def subscribe_submit(request: Request) -> Response:
    fields = form_fields(await request.body())
    wanted = SubscribeInput(
        email=first(fields, "email"),
        name=first(fields, "name") or None,
        categories=tuple(fields.get("categories", ())),
        frequency=first(fields, "frequency") or None,
        timezone=_browser_zone(first(fields, "timezone")),
        given_name=first(fields, "given_name") or None,
    )
    proof = Proof(first(fields, "pow_challenge"), first(fields, "pow_nonce"))
    trap = first(fields, HONEYPOT)
    try:
        await run_in_threadpool(_guard(request).subscribe, wanted, client_key(request), trap, proof)
    except ValidationError as exc:
        known = await run_in_threadpool(_known, _subs(request))
        values = {
            "email": wanted.email,
            "name": wanted.name or "",
            "given_name": wanted.given_name or "",
            "categories": wanted.categories,
            "frequency": wanted.frequency or "daily",
            "timezone": first(fields, "timezone"),
            "known": known,
        }
        return _subscribe_page(request, values, [_problem(exc)], 422)
    embed = request.query_params.get("embed") == "1"
    return message(request, "Check your inbox", *CHECK_INBOX, embed=embed)


def _problem(exc: ValidationError) -> tuple[str, str]:
    return field_of(exc), str(exc)


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) for every error in `exc`, in form order."""
    return [_problem(e) for e in (exc.errors if isinstance(exc, FieldErrors) else (exc,))]


# -- confirm ------------------------------------------------------------------------------------


async def confirm_page(request: Request) -> Response:
    token = request.path_params["token"]
    sub = await run_in_threadpool(_subs(request).by_token, TokenPurpose.CONFIRM, token)
    if sub.status is not SubscriberStatus.PENDING:
        return await _confirmed(request, sub)
    action = {"url": f"/c/{token}", "label": "Confirm my subscription", "fields": []}
    lines = (f"One step left: confirm that {sub.email} should get the digest.",)
    return message(request, "Confirm your subscription", *lines, action=action)


async def confirm_submit(request: Request) -> Response:
    await request.body()
    sub = await run_in_threadpool(_confirm, _subs(request), request.path_params["token"])
    return await _confirmed(request, sub)


def _confirm(subs: SubscriptionService, token: str) -> Subscriber:
    """Pending → active; other states stay as they are (an old link cannot resubscribe)."""
    sub = subs.by_token(TokenPurpose.CONFIRM, token)
    try:
        return subs.apply(sub.id, Action.CONFIRM)
    except InvalidTransitionError:
        return subs.by_id(sub.id)


async def _confirmed(request: Request, sub: Subscriber) -> Response:
    if sub.status is not SubscriberStatus.ACTIVE:
        return message(
            request,
            "This link no longer applies",
            _state(sub, request.app.state.settings.digest.instant_delay),
            status=409,
        )
    url = await run_in_threadpool(_subs(request).links.preferences, sub.id)
    return message(
        request,
        "You are subscribed",
        f"Digests will come to {sub.email}: {sub.schedule.describe()}.",
        links=[{"url": url, "label": "Choose categories and schedule"}],
    )


# -- unsubscribe --------------------------------------------------------------------------------


async def unsubscribe_page(request: Request) -> Response:
    """GET never unsubscribes (link scanners follow GETs): one button that POSTs."""
    token = request.path_params["token"]
    sub = await run_in_threadpool(_subs(request).by_token, TokenPurpose.UNSUBSCRIBE, token)
    if sub.status is SubscriberStatus.UNSUBSCRIBED:
        return message(request, "You are unsubscribed", f"{sub.email} gets no more digests.")
    action = {"url": f"/u/{token}", "label": "Unsubscribe", "fields": []}
    lines = (f"Stop sending the {request.app.state.settings.site.title} digest to {sub.email}?",)
    return message(request, "Unsubscribe", *lines, action=action)


async def unsubscribe_submit(request: Request) -> Response:
    """The button, and RFC 8058 one-click (body List-Unsubscribe=One-Click): no cookie needed."""
    await request.body()
    sub = await run_in_threadpool(_unsubscribe, _subs(request), request.path_params["token"])
    return message(
        request,
        "You are unsubscribed",
        f"{sub.email} gets no more digests; anything queued for it was cancelled.",
        links=[{"url": "/subscribe", "label": "Changed your mind? Subscribe again"}],
    )


LINKS_SENT = (
    "If this address gets the digest, an email with its own links is on its way to it.",
    "Open it and use Unsubscribe or Change preferences; nothing changes until you do.",
)


def _unsubscribe_form(
    request: Request,
    email: str = "",
    problems: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    mailto = request.app.state.settings.email.unsubscribe_mailto
    return page(
        request,
        "unsubscribe.html.j2",
        status,
        title="Unsubscribe",
        email=email,
        problems=problems or [],
        mailto=mailto.removeprefix("mailto:") if mailto else "",
    )


async def unsubscribe_help(request: Request) -> Response:
    """Where the archive's Unsubscribe and Change preferences lead: links in mail are personal
    (signed), so this page mails a reader their own links (or names the mailto address)."""
    return _unsubscribe_form(request)


async def unsubscribe_request(request: Request) -> Response:
    """Mail the address its links; the same answer whether or not it is a subscriber."""
    email = first(form_fields(await request.body()), "email")
    try:
        await run_in_threadpool(_guard(request).send_links, email, client_key(request))
    except ValidationError as exc:
        return _unsubscribe_form(request, email, [("email", str(exc))], 422)
    return message(request, "Check your inbox", *LINKS_SENT)


def _unsubscribe(subs: SubscriptionService, token: str) -> Subscriber:
    """Always succeeds (RFC 8058 one-click may repeat); queued mail is cancelled."""
    return subs.apply(subs.by_token(TokenPurpose.UNSUBSCRIBE, token).id, Action.UNSUBSCRIBE)


# -- preferences --------------------------------------------------------------------------------


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in available_timezones() if "/" in z and "Etc" not in z))


def _state(sub: Subscriber, instant_delay: int) -> str:
    if sub.status is SubscriberStatus.PAUSED:
        return "digests are paused."
    return {
        SubscriberStatus.ACTIVE: f"digests are on ({sub.schedule.describe(instant_delay)}).",
        SubscriberStatus.PENDING: "waiting for the confirmation link to be followed.",
        SubscriberStatus.UNSUBSCRIBED: "unsubscribed.",
        SubscriberStatus.BOUNCED: "paused: mail to this address bounced.",
        SubscriberStatus.COMPLAINED: "stopped: this address reported a digest as spam.",
    }[sub.status]


def _stored(sub: Subscriber, index: CategoryIndex) -> dict[str, Any]:
    """The form's values from the stored subscriber."""
    return {
        "given_name": sub.given_name or "",
        "categories": {index.by_key[k].name for k in sub.categories if k in index.by_key},
        "frequency": sub.frequency.value,
        "weekday": DAY_NAMES[sub.weekday][:3],
        "time": f"{sub.send_time.hour:02d}:{sub.send_time.minute:02d}",
        "timezone": sub.timezone,
    }


def _typed(wanted: PreferencesInput, stored: dict[str, Any]) -> dict[str, Any]:
    """The form's values as the reader sent them (empty fields show the stored value)."""
    sent = {
        "given_name": wanted.given_name,
        "categories": None if wanted.categories is None else set(wanted.categories),
        "frequency": wanted.frequency,
        "weekday": wanted.weekday,
        "time": wanted.time,
        "timezone": wanted.timezone,
    }
    return {k: stored[k] if v is None else v for k, v in sent.items()}


async def _preferences_page(
    request: Request,
    sub: Subscriber,
    *,
    notice: str = "",
    problems: list[tuple[str, str]] | None = None,
    status: int = 200,
    wanted: PreferencesInput | None = None,
) -> Response:
    subs = _subs(request)
    token = request.path_params["token"]
    index: CategoryIndex = await run_in_threadpool(subs.categories)
    unsubscribe_url = await run_in_threadpool(subs.links.unsubscribe, sub.id)
    values = _stored(sub, index)
    return page(
        request,
        "preferences.html.j2",
        status,
        title="Your digest",
        sub=sub,
        token=token,
        csrf=_guard(request).csrf(token),
        known=index.sorted_names(),
        values=values if wanted is None else _typed(wanted, values),
        bad=dict(problems or []),
        weekdays=[(d[:3], d.capitalize()) for d in DAY_NAMES],
        zones=_zones(),
        paused=sub.status is SubscriberStatus.PAUSED,
        active=sub.status is SubscriberStatus.ACTIVE,
        state=_state(sub, request.app.state.settings.digest.instant_delay),
        max_wait=wait_text(sub.max_wait),
        notice=notice,
        problems=problems or [],
        unsubscribe_url=unsubscribe_url,
    )


async def preferences_page(request: Request) -> Response:
    token = request.path_params["token"]
    sub = await run_in_threadpool(_subs(request).by_token, TokenPurpose.PREFERENCES, token)
    return await _preferences_page(request, sub)


NOTICES = {"pause": "Digests paused.", "resume": "Digests resumed."}


async def preferences_submit(request: Request) -> Response:
    fields = form_fields(await request.body())
    token = request.path_params["token"]
    csrf, action = first(fields, "csrf"), first(fields, "action") or "save"
    wanted = PreferencesInput(
        categories=tuple(fields.get("categories", ())),
        frequency=first(fields, "frequency") or None,
        weekday=first(fields, "weekday") or None,
        time=first(fields, "time") or None,
        timezone=first(fields, "timezone") or None,
        month_day=first(fields, "month_day") or None,
        min_posts=first(fields, "min_posts") or None,
        max_wait=first(fields, "max_wait") or None,
        # sent (even empty: that clears it) by the page's field; absent from older forms
        given_name=first(fields, "given_name") if "given_name" in fields else None,
    )
    try:
        sub = await run_in_threadpool(_save, _guard(request), token, csrf, action, wanted)
    except InvalidTokenError:
        raise
    except ValidationError as exc:  # a bad field, or a transition the table forbids
        sub = await run_in_threadpool(_subs(request).by_token, TokenPurpose.PREFERENCES, token)
        problems = _problems(exc)
        return await _preferences_page(request, sub, problems=problems, status=422, wanted=wanted)
    return await _preferences_page(request, sub, notice=NOTICES.get(action, "Saved."))


def _save(guard: Guard, token: str, csrf: str, action: str, wanted: PreferencesInput) -> Subscriber:
    sub, subs = guard.checked(token, csrf), guard.subscriptions
    if action in ("pause", "resume"):
        return subs.apply(sub.id, Action(action))
    return subs.set_preferences(sub.id, wanted)


# -- archive ------------------------------------------------------------------------------------


def _mailer(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


async def archive(request: Request) -> Response:
    editions = await run_in_threadpool(_mailer(request).editions, ARCHIVE_LIMIT)
    return page(request, "archive.html.j2", title="Past digests", editions=editions)


async def archive_atom(request: Request) -> Response:
    editions = await run_in_threadpool(_mailer(request).editions, 50)
    settings = request.app.state.settings
    newest = editions[0].sent_at if editions else datetime(1970, 1, 1, tzinfo=UTC)
    body = (
        environment()
        .get_template("archive_atom.xml.j2")
        .render(
            site=settings.site,
            base=settings.web.base_url,
            editions=editions,
            updated=newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
    )
    return Response(body, media_type="application/atom+xml; charset=utf-8")


async def archive_edition(request: Request) -> Response:
    """The edition's own HTML, sandboxed: no scripts, no forms, inline styles only."""
    key = request.path_params["key"]
    found = None
    if EDITION_KEY.fullmatch(key):
        found = await run_in_threadpool(_mailer(request).edition, key)
    if found is None:
        raise NotFoundError("no such digest")
    headers = {
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
        "img-src https: data:; sandbox allow-popups allow-top-navigation-by-user-activation",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
    }
    return HTMLResponse(found.html, headers=headers)


ROUTES = [
    Route("/", index),
    Route("/subscribe", subscribe_form, methods=["GET"]),
    Route("/subscribe", subscribe_submit, methods=["POST"]),
    Route("/c/{token}", confirm_page, methods=["GET"]),
    Route("/c/{token}", confirm_submit, methods=["POST"]),
    Route("/unsubscribe", unsubscribe_help, methods=["GET"]),
    Route("/unsubscribe", unsubscribe_request, methods=["POST"]),
    Route("/u/{token}", unsubscribe_page, methods=["GET"]),
    Route("/u/{token}", unsubscribe_submit, methods=["POST"]),
    Route("/p/{token}", preferences_page, methods=["GET"]),
    Route("/p/{token}", preferences_submit, methods=["POST"]),
    Route("/archive/", archive),
    Route("/archive/atom.xml", archive_atom),
    Route("/archive/{key}/", archive_edition),
]
