"""The access log (`serve --access-log`, `[web] access_log`): one line per request with the
method, path, status, bytes sent and duration; no client address, and link tokens masked."""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

LOG = logging.getLogger("feedpipe.web.access")
# Confirm, unsubscribe and preferences links carry a token that acts for the subscriber.
TOKEN_PATH = re.compile(r"^/([cup])/[^/]+")


def access_line(method: str, path: str, status: int, sent: int, seconds: float) -> str:
    """ "GET /p/… 200 1834 B 3.1 ms" (tokens masked; no query string, no address)."""
    shown = TOKEN_PATH.sub(r"/\1/…", path)
    return f"{method} {shown} {status} {sent} B {seconds * 1000:.1f} ms"


def _logger() -> logging.Logger:
    if not LOG.handlers:  # uvicorn configures its own loggers, not this one
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
        LOG.addHandler(handler)
        LOG.setLevel(logging.INFO)
        LOG.propagate = False
    return LOG


class AccessLog:
    """ASGI middleware: logs each HTTP request once its response has been sent (or failed)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = _logger()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen = {"status": 500, "sent": 0}

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
            elif message["type"] == "http.response.body":
                seen["sent"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            line = access_line(
                scope["method"],
                scope["path"],
                seen["status"],
                seen["sent"],
                time.perf_counter() - started,
            )
            self.log.info(line)
