"""HTML and JSON responses: the autoescaping page environment and the security headers."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, PackageLoader
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from feedpipe.emails import jinja
from feedpipe.errors import ValidationError
from feedpipe.subscriptions.fields import FieldErrors, UnknownCategoriesError, field_of

CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors {frames}"
)


@cache
def environment() -> Environment:
    """Pages: every value is HTML-escaped unless a template says otherwise."""
    return jinja.environment(
        PackageLoader("feedpipe.web", "templates/pages"), True, keep_trailing_newline=False
    )


def security_headers(frames: str = "'none'") -> dict[str, str]:
    """No framing (except the embeddable form), no referrer: page URLs carry tokens."""
    return {
        "content-security-policy": CSP.format(frames=frames),
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "cache-control": "no-store",
    }


def page(
    request: Request, template: str, status: int = 200, *, frames: str = "'none'", **ctx: Any
) -> HTMLResponse:
    settings = request.app.state.settings
    ctx.setdefault("embed", False)
    html = environment().get_template(template).render(site=settings.site, **ctx)
    return HTMLResponse(html, status, headers=security_headers(frames))


def message(
    request: Request, title: str, *lines: str, status: int = 200, **ctx: Any
) -> HTMLResponse:
    ctx.setdefault("action", None)
    ctx.setdefault("links", [])
    return page(request, "message.html.j2", status, title=title, lines=lines, **ctx)


def problem(
    status: int, error: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    from feedpipe.web.models import Problem

    body = Problem(error=error, **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status, headers=headers)


def validation_problem(exc: Exception) -> JSONResponse:
    """422 with the reason, each field when known, and the known categories when relevant."""
    found = exc.errors if isinstance(exc, FieldErrors) else (exc,)
    fields = [
        {"field": field_of(e), "message": str(e)}
        for e in found
        if isinstance(e, ValidationError) and field_of(e)
    ]
    known = next((e.known for e in found if isinstance(e, UnknownCategoriesError)), None)
    if known is not None:
        return problem(422, str(exc), fields=fields, known=list(known))
    return problem(422, str(exc), fields=fields)


def json_model(model: BaseModel, status: int = 200) -> Response:
    return Response(
        model.model_dump_json(),
        status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def form_fields(body: bytes) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body (bad UTF-8 becomes U+FFFD)."""
    text = body.decode("utf-8", "replace")
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=200)
    except ValueError:
        raise ValidationError("the form has too many fields") from None


def first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0] if values else ""
