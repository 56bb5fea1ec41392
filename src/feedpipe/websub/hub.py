"""The hub `feedpipe serve` runs ([websub] serve): verify intents, keep leases, distribute.

Requests are checked at once (a bad one is refused with its reason); verification and
deliveries run on a small thread pool so the web answers without waiting on any callback.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlsplit

from feedpipe.clock import Clock
from feedpipe.errors import FeedWriteError, ValidationError
from feedpipe.feeds.writer import confined, read_file
from feedpipe.model.websub import HubSubscription
from feedpipe.settings import Settings
from feedpipe.store import WebsubStore
from feedpipe.websub.client import LOG, Reply, Retry, Send, request, with_retries
from feedpipe.websub.rules import (
    HubRequest,
    callback_refusal,
    delivery_headers,
    grant_lease,
    media_type,
    parse_request,
    topic_path,
    verification_url,
)

Resolve = Callable[[str], Sequence[str]]  # host name -> its IP addresses
GONE = 410  # a subscriber answering this to a delivery is unsubscribed (W3C WebSub §7)


def resolve(host: str) -> list[str]:
    """The IP addresses of `host` (ValidationError when it does not resolve)."""
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ValidationError(f"hub.callback host {host!r} does not resolve") from exc
    return sorted({str(info[4][0]) for info in found})


class Hub:
    """Subscriptions in the store (they survive restarts); verification and delivery queued
    on `workers` threads, each request retried with backoff (bounded)."""

    def __init__(
        self,
        settings: Settings,
        store: WebsubStore,
        clock: Clock,
        *,
        send: Send = request,
        sleep: Callable[[float], None] = time.sleep,
        lookup: Resolve = resolve,
        workers: int = 4,
    ) -> None:
        hub_url = settings.own_hub
        if hub_url is None:
            raise ValidationError("[websub] serve is false: this server is not a hub")
        self.url = hub_url
        self.feeds_url = settings.feeds_url
        self.output_dir = settings.feeds.output_dir
        ws = settings.websub
        self.allow_private = ws.allow_private
        self.lease = (ws.lease_seconds, ws.max_lease_seconds)
        self.retry = Retry(ws.attempts, ws.backoff_seconds, ws.timeout_seconds)
        self.store, self.clock = store, clock
        self.send, self.sleep, self.lookup = send, sleep, lookup
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="websub-hub")
        self._pending: set[Future[object]] = set()
        self._lock = threading.Lock()

    # --- requests (the web calls this in a thread: it may resolve a host name) ------------

    def accept(self, form: Mapping[str, str]) -> HubRequest:
        """Check a request and queue its work; ValidationError (400) says what is wrong."""
        req = parse_request(form)
        path = topic_path(req.topic, self.feeds_url)
        if path is None:
            raise ValidationError(f"hub.topic {req.topic[:200]!r} is not a feed of this site")
        if req.mode == "publish":
            self._submit(self.distribute, req.topic)
            return req
        self._check_callback(req.callback)
        self._submit(self.verify, req)
        return req

    def _check_callback(self, callback: str) -> None:
        if self.allow_private:
            return
        host = urlsplit(callback).hostname or ""
        refusal = callback_refusal(self.lookup(host))
        if refusal:
            raise ValidationError(refusal + " (set [websub] allow_private = true to allow it)")

    def _submit(self, call: Callable[..., object], *args: object) -> None:
        future = self.pool.submit(self._logged, call, *args)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[object]) -> None:
        with self._lock:
            self._pending.discard(future)

    @staticmethod
    def _logged(call: Callable[..., object], *args: object) -> object:
        try:
            return call(*args)
        except Exception:  # a background task's failure is logged, never lost silently
            LOG.exception("websub.task_failed", extra={"fields": {"task": call.__name__}})
            return None

    # --- intent verification ----------------------------------------------------------------

    def verify(self, req: HubRequest) -> bool:
        """GET the callback with a challenge; on its echo, store (or forget) the subscription."""
        lease = grant_lease(req.lease_seconds, *self.lease)
        challenge = secrets.token_urlsafe(24)
        url = verification_url(req.callback, req, challenge, lease)
        reply, attempts = with_retries(
            lambda: self.send("GET", url, timeout=self.retry.timeout), self.retry, self.sleep
        )
        fields: dict[str, object] = {"mode": req.mode, "topic": req.topic}
        fields |= {"callback": req.callback, "attempts": attempts}
        if not (reply.ok and reply.body.strip() == challenge.encode()):
            why = "challenge not echoed" if reply.ok else reply.describe()
            LOG.warning("websub.verify_failed", extra={"fields": {**fields, "error": why}})
            return False
        now = self.clock.now()
        if req.mode == "subscribe":
            expires = now + timedelta(seconds=lease)
            sub = HubSubscription(req.topic, req.callback, req.secret, lease, expires, now)
            self.store.save_hub_subscription(sub)
        else:
            self.store.remove_hub_subscription(req.topic, req.callback)
        LOG.info("websub.verified", extra={"fields": {**fields, "lease": lease}})
        return True

    # --- content distribution ---------------------------------------------------------------

    def distribute(self, topic: str) -> int:
        """Queue a POST of the topic's current feed to every subscriber whose lease runs
        (expired leases are dropped first); how many deliveries were queued."""
        path = topic_path(topic, self.feeds_url)
        if path is None:
            return 0
        now = self.clock.now()
        self.store.expire_hub_subscriptions(now)
        subs = self.store.hub_subscriptions(topic, now)
        if not subs:
            return 0
        try:
            body = read_file(confined(self.output_dir, path))
        except FeedWriteError as exc:
            LOG.warning("websub.topic_unreadable", extra={"fields": {"topic": topic, "error": exc}})
            return 0
        for sub in subs:
            self._submit(self.deliver, sub, body, media_type(path))
        return len(subs)

    def deliver(self, sub: HubSubscription, body: bytes, content_type: str) -> Reply:
        """One distribution to one subscriber; a 410 Gone ends the subscription. The callback's
        host is checked again: its name may resolve elsewhere since it subscribed."""
        try:
            self._check_callback(sub.callback)
        except ValidationError as exc:
            return Reply(0, error=str(exc))
        headers = delivery_headers(content_type, self.url, sub.topic, sub.secret, body)
        reply, attempts = with_retries(
            lambda: self.send(
                "POST", sub.callback, body=body, headers=headers, timeout=self.retry.timeout
            ),
            self.retry,
            self.sleep,
        )
        fields: dict[str, object] = {"topic": sub.topic, "callback": sub.callback}
        fields |= {"status": reply.status, "attempts": attempts}
        if reply.ok:
            LOG.info("websub.delivered", extra={"fields": fields})
        else:
            if reply.status == GONE:
                self.store.remove_hub_subscription(sub.topic, sub.callback)
            failed = {**fields, "error": reply.describe()}
            LOG.warning("websub.delivery_failed", extra={"fields": failed})
        return reply

    # --- life cycle -------------------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        """Wait until no queued work is left (tests); False if some still runs at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._pending:
                    return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
