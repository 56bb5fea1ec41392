"""The OpenAPI 3.1 description of the JSON endpoints, built from the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from feedpipe import __version__
from feedpipe.model import SubscriberStatus
from feedpipe.web.models import (
    Accepted,
    BuildResult,
    Challenge,
    Deliverability,
    OutboxState,
    Problem,
    SubscribeBody,
    SubscriberList,
    SubscriberOut,
    SubscriberPatch,
    SuppressBody,
    Suppressed,
    SuppressionList,
)

MODELS: tuple[type[BaseModel], ...] = (
    SubscribeBody, Accepted, Problem, SubscriberList, OutboxState, BuildResult, Challenge,
    SuppressionList, SuppressBody, Suppressed, Deliverability, SubscriberPatch, SubscriberOut,
)  # fmt: skip
REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _problems(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed request",
        401: "No bearer token",
        403: "Wrong bearer token, or the admin API is disabled",
        413: "Body too large (Content-Length over the limit, or more bytes than it)",
        415: "Not JSON",
        422: "Invalid field (the reason is in `fields`; unknown categories list `known`)",
        429: "Rate limited (see Retry-After)",
        503: "Too many accepted requests wait for their work (see Retry-After)",
    }
    return {str(c): _json(reasons[c], Problem) for c in codes}


def _admin(summary: str, model: type[BaseModel], method: str = "get") -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": {"200": _json(summary, model), **_problems(401, 403)},
    }
    if method == "post":
        op["responses"].update(_problems(413))
    return {method: op}


def _suppressions() -> dict[str, Any]:
    listed = _admin("The suppression list, newest first", SuppressionList)
    add = _admin("Suppress an address (its subscriber stops at once)", Suppressed, "post")
    add["post"]["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": _ref(SuppressBody)}},
    }
    add["post"]["responses"] |= {
        "201": _json("Added", Suppressed),
        "200": _json("Already suppressed: the entry in force", Suppressed),
        **_problems(422),
    }
    return listed | add


def _subscriber_patch() -> dict[str, Any]:
    op = _admin("Change a subscriber's schedule, categories or given name", SubscriberOut, "patch")
    patch = op["patch"]
    patch["parameters"] = [
        {"name": "email", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    patch["requestBody"] = {
        "required": True,
        "content": {
            media: {"schema": _ref(SubscriberPatch)}
            for media in ("application/json", "application/merge-patch+json")
        },
    }
    patch["responses"] |= {"404": _json("No such subscriber", Problem), **_problems(413, 415, 422)}
    return op


def _unsuppress() -> dict[str, Any]:
    op = _admin("Take an address off the suppression list", Suppressed, "delete")
    op["delete"]["parameters"] = [
        {"name": "email", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    op["delete"]["responses"]["404"] = _json("Not suppressed", Problem)
    return op


def openapi() -> dict[str, Any]:
    """The document served at /openapi.json."""
    _, defs = models_json_schema([(m, "validation") for m in MODELS], ref_template=REF)
    subscribers = _admin("Subscribers", SubscriberList)
    subscribers["get"]["parameters"] = [
        {
            "name": "status",
            "in": "query",
            "required": False,
            "schema": {"enum": [s.value for s in SubscriberStatus]},
        }
    ]
    subscribers["get"]["responses"].update(_problems(422))
    return {
        "openapi": "3.1.0",
        "info": {"title": "feedpipe subscriber API", "version": __version__},
        "paths": {
            "/api/subscribe": {
                "post": {
                    "summary": "Ask for a subscription (double opt-in: a confirmation email)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(SubscribeBody)}},
                    },
                    "responses": {
                        "202": _json("Accepted; the same for any address", Accepted),
                        **_problems(400, 413, 415, 422, 429, 503),
                    },
                }
            },
            "/api/subscribe/challenge": {
                "get": {
                    "summary": "The proof of work a subscribe request must carry (if any)",
                    "responses": {
                        "200": _json("A fresh challenge, or bits 0", Challenge),
                    },
                }
            },
            "/api/admin/subscribers": subscribers,
            "/api/admin/subscribers/{email}": _subscriber_patch(),
            "/api/admin/outbox": _admin("Outbox messages by state", OutboxState),
            "/api/admin/build": _admin("Sync and build the feeds now", BuildResult, "post"),
            "/api/admin/suppressions": _suppressions(),
            "/api/admin/deliverability": _admin(
                "Bounce and complaint rates (7 and 30 days, last editions), inbound mail",
                Deliverability,
            ),
            "/api/admin/suppressions/{email}": _unsuppress(),
        },
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
