"""Real HTTP servers on 127.0.0.1 for the WebSub tests: a hub that records publish POSTs, and
a subscriber callback that answers intent verification and records deliveries."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request a server received, and when (time.monotonic)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Behaviour:
    """How the server answers: POST status (the first `fail_first` POSTs get `fail_status`),
    and whether a verification GET echoes hub.challenge."""

    fail_first: int = 0
    fail_status: int = 503
    post_status: int = 202
    echo: bool = True
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _record(self) -> Seen:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        seen = Seen(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            time.monotonic(),
        )
        b = self.server.behaviour
        with b.lock:
            b.seen.append(seen)
            b.lock.notify_all()
        return seen

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        seen = self._record()
        challenge = seen.query.get("hub.challenge", [""])[0]
        echo = challenge if self.server.behaviour.echo else "not-the-challenge"
        self._answer(200, echo.encode())

    def do_POST(self) -> None:
        self._record()
        b = self.server.behaviour
        with b.lock:
            posts = sum(1 for s in b.seen if s.method == "POST")
        self._answer(b.fail_status if posts <= b.fail_first else b.post_status)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour


@dataclass
class Running:
    url: str
    behaviour: Behaviour

    @property
    def seen(self) -> list[Seen]:
        with self.behaviour.lock:
            return list(self.behaviour.seen)

    def posts(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST"]

    def wait(self, method: str, count: int, timeout: float) -> list[Seen]:
        """The requests of `method` once there are `count` of them (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        with self.behaviour.lock:
            while True:
                found = [s for s in self.behaviour.seen if s.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} {method} requests not seen within {timeout} s")
                self.behaviour.lock.wait(left)


@contextmanager
def http_server(behaviour: Behaviour | None = None, path: str = "/") -> Iterator[Running]:
    """A recording server on 127.0.0.1 (a free port); its URL ends with `path`."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = behaviour or Behaviour()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(f"http://127.0.0.1:{server.server_address[1]}{path}", server.behaviour)
    finally:
        server.shutdown()
        server.server_close()
