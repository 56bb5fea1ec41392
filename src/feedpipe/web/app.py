"""The ASGI app: feed files at the root, pages and JSON on Starlette, errors mapped to HTTP."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedpipe.errors import FeedpipeError, NotFoundError, ValidationError
from feedpipe.service import Feedpipe
from feedpipe.subscriptions.tokens import ExpiredTokenError, InvalidTokenError
from feedpipe.web import api, pages, websub
from feedpipe.web.errors import CsrfError, IntakeFullError, RateLimitedError
from feedpipe.web.feedfiles import FeedFiles
from feedpipe.web.guard import BudgetedMailer, Guard, Limits, ThrottledMailer
from feedpipe.web.intake import IntakeConfig
from feedpipe.web.mailer import Mailer
from feedpipe.web.ratelimit import Monotonic, RateLimiter
from feedpipe.web.readers import ReaderLog
from feedpipe.web.render import message, problem, validation_problem

if TYPE_CHECKING:
    from feedpipe.websub.hub import Hub

ADMIN_TOKEN_ENV = "FEEDPIPE_ADMIN_TOKEN"
# Seconds a stored form request waits before its work (tests hold it there to crash `serve`).
INTAKE_DELAY_ENV = "FEEDPIPE_WEB_INTAKE_DELAY"
# Paths the pages app answers; every other path is a file under feeds.output_dir.
APP_PREFIXES = (
    "/subscribe",
    "/unsubscribe",
    "/api/",
    "/u/",
    "/p/",
    "/c/",
    "/archive",
    "/static/",
    "/openapi",
    "/websub",
)
log = logging.getLogger("feedpipe.web")


@dataclass(frozen=True, slots=True)
class WebConfig:
    """Knobs of the web surface that are not in config.toml (secrets, limits, clocks)."""

    admin_token: str | None = None
    limits: Limits = field(default_factory=Limits)
    max_body: int = 16 * 1024
    feed_cache_control: str = "public, max-age=300"
    monotonic: Monotonic = time.monotonic
    readers_flush_seconds: float = 10.0  # how often feed reader counts go to the store
    count_readers: bool = True  # False: feed fetches are not counted (benchmarks' baseline)
    intake: IntakeConfig = field(default_factory=IntakeConfig)  # the stored form requests

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        delay = env.get(INTAKE_DELAY_ENV, "").strip()
        try:
            intake = IntakeConfig(delay=float(delay)) if delay else IntakeConfig()
        except ValueError:
            raise ValidationError(f"${INTAKE_DELAY_ENV} must be a number of seconds") from None
        return cls(admin_token=env.get(ADMIN_TOKEN_ENV) or None, intake=intake)


class FeedpipeWeb:
    """Routes a request to the feed files or to the Starlette pages app by its path."""

    def __init__(self, pages_app: Starlette, feeds: FeedFiles) -> None:
        self.pages = pages_app
        self.feeds = feeds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path != "/" and not path.startswith(APP_PREFIXES):
                await self.feeds(scope, receive, send)
                return
        await self.pages(scope, receive, send)


def create_app(service: Feedpipe, mailer: Mailer, config: WebConfig | None = None) -> FeedpipeWeb:
    """The whole web surface over one Feedpipe service and a Mailer."""
    config = config or WebConfig()
    static = StaticFiles(directory=str(resources.files("feedpipe.web") / "static"))
    hub = service.hub() if service.settings.websub.serve else None
    routes = [*pages.ROUTES, *api.ROUTES, *websub.ROUTES]
    app = Starlette(
        routes=[*routes, Mount("/static", static, name="static")],
        exception_handlers={FeedpipeError: _feedpipe_error, HTTPException: _http_error},
        middleware=[Middleware(BodySizeLimit, max_body=config.max_body)],
    )
    app.state.hub = hub
    app.state.service = service
    app.state.settings = service.settings
    app.state.mailer = mailer
    app.state.admin_token = config.admin_token
    web = service.settings.web
    budgeted = BudgetedMailer(
        mailer,
        service.store,
        service.clock,
        web.confirmations_per_hour,
        web.confirmations_per_domain_per_hour,
    )
    throttled = ThrottledMailer(
        budgeted, RateLimiter(config.limits.confirmations, config.monotonic)
    )
    subscriptions = service.subscriptions.with_mailer(throttled)
    app.state.subscriptions = subscriptions
    guard = Guard(
        subscriptions, config.limits, config.monotonic, web.subscribe_proof_of_work, config.intake
    )
    app.state.guard = guard
    readers = ReaderLog(
        service.store,
        service.clock.now,
        config.monotonic,
        config.readers_flush_seconds,
        service.settings.web.refuse_unconditional_after,
    )
    app.state.readers = readers
    app.router.lifespan_context = _closing(guard, hub, readers)
    feeds = FeedFiles(
        service.settings.feeds.output_dir,
        config.feed_cache_control,
        readers=readers if config.count_readers else None,
    )
    feeds.not_found = _not_found_page(app)  # no such file: the designed 404 page
    return FeedpipeWeb(app, feeds)


class BodySizeLimit:
    """413 for a body over `max_body` bytes, in the documented shape (a JSON problem under
    /api/, the message page elsewhere): at once when its Content-Length says so, else when the
    bytes read pass the limit (the handler's read raises; `_http_error` answers)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        text = f"the request body is larger than {self.max_body} bytes"
        if _declared_size(scope) > self.max_body:
            request = Request(scope)
            if request.url.path.startswith("/api/"):
                response: Response = problem(413, text)
            else:
                response = message(request, TITLES[413], text, status=413)
            await response(scope, receive, send)
            return
        read = 0

        async def limited() -> Message:
            nonlocal read
            got = await receive()
            if got["type"] == "http.request":
                read += len(got.get("body", b""))
                if read > self.max_body:
                    raise HTTPException(413, text)
            return got

        await self.app(scope, limited, send)


def _declared_size(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _closing(
    guard: Guard, hub: Hub | None, readers: ReaderLog
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """The lifespan: at start-up, the intake takes over the form requests a crash left in the
    store; at shutdown, handle the requests still waiting, stop the WebSub hub's deliveries
    and write the last reader counts."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        guard.intake.start()
        yield
        await run_in_threadpool(guard.intake.close)
        if hub is not None:
            hub.close()
        readers.flush()

    return lifespan


def _not_found_page(app: Starlette) -> Any:
    async def not_found(scope: Any, receive: Any, send: Any) -> None:
        scope = {**scope, "app": app}
        await error_page(Request(scope), 404, "")(scope, receive, send)

    return not_found


def _status(exc: FeedpipeError) -> tuple[int, dict[str, str]]:
    if isinstance(exc, RateLimitedError):
        return 429, {"retry-after": str(math.ceil(exc.retry_after))}
    if isinstance(exc, IntakeFullError):
        return 503, {"retry-after": str(math.ceil(exc.retry_after))}
    if isinstance(exc, api.AuthError):
        extra = {"www-authenticate": 'Bearer realm="feedpipe"'} if exc.status == 401 else {}
        return exc.status, extra
    table: list[tuple[type[FeedpipeError], int]] = [
        (ExpiredTokenError, 410),
        (InvalidTokenError, 400),
        (CsrfError, 403),
        (ValidationError, 422),
        (NotFoundError, 404),
    ]
    return next((code for kind, code in table if isinstance(exc, kind)), 500), {}


TITLES = {
    400: "This link is not valid",
    403: "Forbidden",
    404: "Page not found",
    410: "This link has expired",
    422: "Please check what you sent",
    413: "Too large",
    429: "Too many requests",
    503: "Not available right now",
    500: "Something went wrong",
}
HOME = {"url": "/", "label": "Go to the start page"}
SUBSCRIBE = {"url": "/subscribe", "label": "Subscribe to the digest"}
# What the reader can do, under the heading (never repeating it): links, a new link, home.
HELP: dict[int, tuple[tuple[str, ...], list[dict[str, str]]]] = {
    400: (
        (
            "Part of it may be missing: long links sometimes break across two lines in an "
            "email. Open the link from the email again, or copy all of it into the address bar.",
            "Each new digest carries fresh links to your preferences and to unsubscribe.",
        ),
        [SUBSCRIBE, HOME],
    ),
    410: (
        (
            "Links in emails work for a limited time, and this one is too old.",
            "Each new digest carries fresh links; to confirm an address again, subscribe "
            "with it once more and follow the new link.",
        ),
        [SUBSCRIBE, HOME],
    ),
    404: (
        (
            "There is nothing at this address: it may have moved, or it may be mistyped.",
            "The feeds, the past digests and the subscribe form are linked below.",
        ),
        [HOME, SUBSCRIBE, {"url": "/archive/", "label": "Past digests"}],
    ),
}


def error_page(request: Request, status: int, text: str) -> Response:
    """The page of an error: the designed ones (400, 404, 410) say what to do next."""
    if status in HELP:
        lines, links = HELP[status]
        return message(request, TITLES[status], *lines, status=status, links=links)
    return message(request, TITLES.get(status, "Error"), text, status=status)


async def _feedpipe_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FeedpipeError)
    status, headers = _status(exc)
    text = str(exc) if status != 500 else "an internal error; it has been logged"
    if status == 500:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
    if request.url.path.startswith("/api/"):
        return validation_problem(exc) if status == 422 else problem(status, text, headers=headers)
    response = error_page(request, status, text)
    response.headers.update(headers)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return problem(exc.status_code, exc.detail, headers=dict(exc.headers or {}))
    response = error_page(request, exc.status_code, exc.detail)
    response.headers.update(dict(exc.headers or {}))
    return response
