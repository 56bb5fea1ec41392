"""`POST /websub`: the WebSub hub's endpoint ([websub] serve); the hub itself is feedpipe.websub."""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from feedpipe.errors import ValidationError
from feedpipe.settings import HUB_PATH
from feedpipe.web.render import form_fields
from feedpipe.websub.hub import Hub

FORM = "application/x-www-form-urlencoded"


async def hub_endpoint(request: Request) -> Response:
    """subscribe / unsubscribe (202, verified later) and publish (202); 400 with the reason."""
    hub: Hub | None = request.app.state.hub
    if hub is None:
        return PlainTextResponse("this server is not a WebSub hub ([websub] serve)", 404)
    if request.method == "GET":
        return PlainTextResponse(f"WebSub hub: POST {FORM} here (hub.mode, hub.topic …)\n")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        return PlainTextResponse(f"the body must be {FORM}", 415)
    fields = form_fields(await request.body())
    form = {key: values[0] for key, values in fields.items() if values}
    try:
        await anyio.to_thread.run_sync(hub.accept, form)  # may resolve the callback's host
    except ValidationError as exc:
        return PlainTextResponse(str(exc), 400)
    return Response(status_code=202)


ROUTES = [Route(HUB_PATH, hub_endpoint, methods=["GET", "POST"])]
