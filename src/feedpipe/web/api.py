"""JSON routes: subscribe, the admin endpoints behind a bearer token, and /openapi.json."""

from __future__ import annotations

import hmac
import os
import threading
from functools import cache

import pydantic
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from feedpipe.errors import FeedpipeError, ValidationError
from feedpipe.model import SubscriberStatus
from feedpipe.model.hygiene import Suppression, SuppressionReason
from feedpipe.service import Feedpipe
from feedpipe.subscriptions.fields import PreferencesInput, SubscribeInput
from feedpipe.web.guard import Guard, Proof
from feedpipe.web.models import (
    Accepted,
    BuildResult,
    Challenge,
    Deliverability,
    FieldProblem,
    OutboxState,
    Problem,
    SubscribeBody,
    SubscriberList,
    SubscriberOut,
    SubscriberPatch,
    SuppressBody,
    Suppressed,
    SuppressionList,
    SuppressionOut,
)
from feedpipe.web.openapi import openapi
from feedpipe.web.pages import CHECK_INBOX, client_key
from feedpipe.web.render import json_model

_BUILD_LOCK = threading.Lock()
JSON_TYPES = ("application/json", "application/merge-patch+json")


class AuthError(FeedpipeError):
    """A missing (401) or wrong (403) admin bearer token."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def subscribe(request: Request) -> Response:
    if _media_type(request) != "application/json":
        return json_model(Problem(error="send the body as application/json"), 415)
    try:
        body = SubscribeBody.model_validate_json(await request.body())
    except pydantic.ValidationError as exc:
        return json_model(_pydantic_problem(exc), 422)
    wanted = SubscribeInput(
        email=body.email,
        name=body.name,
        categories=tuple(body.categories),
        frequency=body.frequency,
        weekday=body.weekday,
        time=body.time,
        timezone=body.timezone,
        month_day=body.month_day,
        min_posts=None if body.min_posts is None else str(body.min_posts),
        max_wait=body.max_wait,
        given_name=body.given_name,
    )
    guard: Guard = request.app.state.guard
    proof = Proof(body.pow_challenge or "", body.pow_nonce or "")
    await run_in_threadpool(guard.subscribe, wanted, client_key(request), "", proof)
    return json_model(Accepted(message=" ".join(CHECK_INBOX)), 202)


async def subscribe_challenge(request: Request) -> Response:
    guard: Guard = request.app.state.guard
    found = await run_in_threadpool(guard.challenge)
    return json_model(Challenge(challenge=found, bits=guard.pow_bits))


def _pydantic_problem(exc: pydantic.ValidationError) -> Problem:
    fields = [
        FieldProblem(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"])
        for e in exc.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{f.field}: {f.message}" for f in fields)
    return Problem(error=summary or "invalid body", fields=fields)


def _authorise(request: Request) -> None:
    expected: str | None = request.app.state.admin_token
    if not expected:
        raise AuthError("the admin API is disabled: set $FEEDPIPE_ADMIN_TOKEN", 403)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AuthError("send Authorization: Bearer <$FEEDPIPE_ADMIN_TOKEN>", 401)
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise AuthError("wrong admin token", 403)


async def admin_subscribers(request: Request) -> Response:
    _authorise(request)
    status_text = request.query_params.get("status")
    try:
        status = SubscriberStatus(status_text) if status_text else None
    except ValueError:
        choices = ", ".join(s.value for s in SubscriberStatus)
        raise ValidationError(f"status must be one of {choices}") from None
    service: Feedpipe = request.app.state.service
    subs = await run_in_threadpool(service.subscriptions.subscribers, status)
    delay = service.settings.digest.instant_delay
    out = [SubscriberOut.of(s, delay) for s in subs]
    return json_model(SubscriberList(count=len(out), subscribers=out))


def _patch_input(body: SubscriberPatch) -> PreferencesInput:
    """The PATCH body as the preferences form's input: absent (or null) fields stay as they
    are; a given_name sent as null or "" is removed."""

    given = (body.given_name or "") if "given_name" in body.model_fields_set else None
    return PreferencesInput(
        categories=None if body.categories is None else tuple(body.categories),
        frequency=body.frequency,
        weekday=body.weekday,
        time=body.time,
        timezone=body.timezone,
        month_day=body.month_day,
        min_posts=body.min_posts,
        max_wait=body.max_wait,
        given_name=given,
    )


async def admin_subscriber_patch(request: Request) -> Response:
    """Change one subscriber's schedule, categories or given name through the subscription
    service (validated as the preferences page validates); 404 for an unknown address."""
    _authorise(request)
    if _media_type(request) not in JSON_TYPES:
        return json_model(Problem(error="send the body as application/json"), 415)
    try:
        body = SubscriberPatch.model_validate_json(await request.body())
    except pydantic.ValidationError as exc:
        return json_model(_pydantic_problem(exc), 422)
    service: Feedpipe = request.app.state.service
    email, prefs = request.path_params["email"], _patch_input(body)
    sub = await run_in_threadpool(service.subscriptions.update, email, prefs)
    return json_model(SubscriberOut.of(sub, service.settings.digest.instant_delay))


async def admin_outbox(request: Request) -> Response:
    _authorise(request)
    counts = await run_in_threadpool(request.app.state.mailer.counts)
    return json_model(OutboxState(counts=counts))


def _suppression_out(entry: Suppression) -> SuppressionOut:
    return SuppressionOut(
        email=entry.email,
        reason=entry.reason.value,
        source=entry.source,
        created_at=entry.created_at,
        detail=entry.detail,
    )


async def admin_suppressions(request: Request) -> Response:
    _authorise(request)
    service: Feedpipe = request.app.state.service
    if request.method == "GET":
        entries = await run_in_threadpool(service.subscriptions.suppressions.list)
        out = [_suppression_out(e) for e in entries]
        return json_model(SuppressionList(count=len(out), suppressions=out))
    try:
        body = SuppressBody.model_validate_json(await request.body())
    except pydantic.ValidationError as exc:
        return json_model(_pydantic_problem(exc), 422)
    reason = SuppressionReason(body.reason)
    suppressions = service.subscriptions.suppressions
    entry, added = await run_in_threadpool(suppressions.add, body.email, reason, "api", body.detail)
    return json_model(
        Suppressed(added=added, suppression=_suppression_out(entry)), 201 if added else 200
    )


async def admin_unsuppress(request: Request) -> Response:
    _authorise(request)
    service: Feedpipe = request.app.state.service
    entry = await run_in_threadpool(
        service.subscriptions.suppressions.remove, request.path_params["email"]
    )
    return json_model(Suppressed(added=False, suppression=_suppression_out(entry)))


async def admin_deliverability(request: Request) -> Response:
    _authorise(request)
    service: Feedpipe = request.app.state.service
    found = await run_in_threadpool(service.outbox.deliverability_json)
    return json_model(Deliverability.model_validate(found))


async def admin_build(request: Request) -> Response:
    _authorise(request)
    service: Feedpipe = request.app.state.service
    changed: list[str] = []

    def build() -> BuildResult:
        with _BUILD_LOCK:
            started_at = service.clock.now()
            report = service.build()
            who = f"web admin@{os.uname().nodename[:30]}:{os.getpid()}"
            service.record_runs(who, started_at, report.sync, report)
        changed.extend(service.changed_feed_urls(report) if service.settings.websub_hubs else ())
        return BuildResult(
            feeds=report.feeds,
            written=len(report.written),
            unchanged=report.unchanged,
            removed=len(report.removed),
            seconds=round(report.seconds, 3),
        )

    response = json_model(await run_in_threadpool(build))
    if changed:  # WebSub: the hubs hear of the changed feeds after the answer is sent
        response.background = BackgroundTask(service.publish, changed)
    return response


@cache
def _openapi_bytes() -> bytes:
    return bytes(JSONResponse(openapi()).body)


async def openapi_json(request: Request) -> Response:
    return Response(_openapi_bytes(), media_type="application/json")


ROUTES = [
    Route("/api/subscribe", subscribe, methods=["POST"]),
    Route("/api/subscribe/challenge", subscribe_challenge, methods=["GET"]),
    Route("/api/admin/subscribers", admin_subscribers, methods=["GET"]),
    Route("/api/admin/subscribers/{email}", admin_subscriber_patch, methods=["PATCH"]),
    Route("/api/admin/outbox", admin_outbox, methods=["GET"]),
    Route("/api/admin/build", admin_build, methods=["POST"]),
    Route("/api/admin/suppressions", admin_suppressions, methods=["GET", "POST"]),
    Route("/api/admin/deliverability", admin_deliverability, methods=["GET"]),
    Route("/api/admin/suppressions/{email}", admin_unsuppress, methods=["DELETE"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
]
