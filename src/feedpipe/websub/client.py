"""The one HTTP client of WebSub (stdlib urllib): bounded timeouts, no redirects, retries."""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LOG = logging.getLogger("feedpipe.websub")
MAX_REPLY = 64 * 1024  # bytes of a reply body read (a challenge echo, an error text)
USER_AGENT = "feedpipe-websub"


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer (status 0: none came: refused, timed out, DNS)."""

    status: int
    body: bytes = b""
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        """Worth trying again: no answer, 429 or a server error."""
        return self.status == 0 or self.status == 429 or self.status >= 500

    def describe(self) -> str:
        """`HTTP 503` or the reason no answer came."""
        return f"HTTP {self.status}" if self.status else self.error


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently a request is tried: backoff, 2×backoff, 4×backoff …"""

    attempts: int = 4
    backoff: float = 1.0
    timeout: float = 5.0

    def delays(self) -> list[float]:
        """The waits before the 2nd, 3rd … attempt."""
        return [self.backoff * 2**i for i in range(self.attempts - 1)]


Send = Callable[..., Reply]  # request(method, url, body=, headers=, timeout=)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a hop: a callback may not redirect the hub elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 5.0,
) -> Reply:
    """One request; every failure becomes a Reply (never an exception)."""
    req = urllib.request.Request(url, data=body, method=method)
    req.add_header("User-Agent", USER_AGENT)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with _OPENER.open(req, timeout=timeout) as answer:
            return Reply(answer.status, answer.read(MAX_REPLY))
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.read(MAX_REPLY), str(exc.reason))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Reply(0, error=f"{type(reason).__name__}: {reason}"[:300])


def with_retries(
    call: Callable[[], Reply], retry: Retry, sleep: Callable[[float], None] = time.sleep
) -> tuple[Reply, int]:
    """Call until an answer that is not worth retrying, or the attempts run out;
    (the last reply, attempts made)."""
    delays = retry.delays()
    attempt = 1
    reply = call()
    while reply.retryable and attempt <= len(delays):
        sleep(delays[attempt - 1])
        attempt += 1
        reply = call()
    return reply, attempt
