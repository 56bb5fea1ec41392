"""Publishing: after a build, tell each hub which feed URLs changed (hub.mode=publish)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlencode

from feedpipe.clock import Clock
from feedpipe.feeds.formats import FILE_NAMES
from feedpipe.model.websub import PublishState
from feedpipe.store import WebsubStore
from feedpipe.websub.client import LOG, Reply, Retry, Send, request, with_retries

FORM = "application/x-www-form-urlencoded"
_TOPIC_NAMES = frozenset(FILE_NAMES.values())


def feed_urls(written: Iterable[str], base_url: str) -> list[str]:
    """Public URLs of the subscription documents among the paths a build wrote (archive
    pages, people's pages and the OPML are not topics), in a stable order."""
    base = base_url.rstrip("/")
    return sorted({f"{base}/{p}" for p in written if p.rpartition("/")[2] in _TOPIC_NAMES})


def publish_body(url: str) -> bytes:
    """The form of one publish notification (the common hub convention; W3C WebSub §7)."""
    return urlencode({"hub.mode": "publish", "hub.url": url}).encode()


@dataclass(frozen=True, slots=True)
class HubOutcome:
    """One hub's share of a publish run."""

    hub: str
    ok: int
    failed: int
    retries: int
    error: str = ""  # the last failure ("HTTP 503", "ConnectionRefusedError: …")


@dataclass(frozen=True, slots=True)
class PublishReport:
    """A publish run: URLs accepted and given up on, over every hub."""

    outcomes: tuple[HubOutcome, ...]
    seconds: float

    @property
    def ok(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.failed for o in self.outcomes)

    @property
    def retries(self) -> int:
        return sum(o.retries for o in self.outcomes)

    def counts(self) -> dict[str, int | float]:
        return {
            "hubs": len(self.outcomes),
            "ok": self.ok,
            "failed": self.failed,
            "retries": self.retries,
        }

    def error(self) -> str | None:
        """What went wrong, for the run record and the log; None when every hub accepted."""
        failed = [o for o in self.outcomes if o.failed]
        if not failed:
            return None
        return (
            f"{self.failed} publish notifications not accepted: {failed[0].hub}: {failed[0].error}"
        )


class Publisher:
    """Sends publish notifications, hubs in parallel, each URL retried with backoff (bounded);
    records each hub's last result in the store (`feedpipe status`)."""

    def __init__(
        self,
        hubs: Sequence[str],
        store: WebsubStore,
        clock: Clock,
        retry: Retry,
        send: Send = request,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hubs = tuple(hubs)
        self.store = store
        self.clock = clock
        self.retry = retry
        self.send = send
        self.sleep = sleep

    def publish(self, urls: Sequence[str]) -> PublishReport:
        """Notify every hub of every URL; never raises for a hub's failure."""
        started = time.perf_counter()
        if not self.hubs or not urls:
            return PublishReport((), 0.0)
        with ThreadPoolExecutor(len(self.hubs), thread_name_prefix="websub-publish") as pool:
            outcomes = tuple(pool.map(lambda hub: self._to_hub(hub, urls), self.hubs))
        for outcome in outcomes:
            self._record(outcome, len(urls))
        return PublishReport(outcomes, time.perf_counter() - started)

    def _to_hub(self, hub: str, urls: Sequence[str]) -> HubOutcome:
        ok = failed = retries = 0
        error = ""
        for number, url in enumerate(urls):
            reply, attempts = with_retries(self._poster(hub, url), self.retry, self.sleep)
            retries += attempts - 1
            fields = {"hub": hub, "url": url, "status": reply.status, "attempts": attempts}
            if reply.ok:
                ok += 1
                LOG.info("websub.published", extra={"fields": fields})
                continue
            failed += 1
            error = reply.describe()
            LOG.warning("websub.publish_failed", extra={"fields": {**fields, "error": error}})
            if reply.status == 0:  # the hub is not there: do not wait on it for every URL
                failed += len(urls) - number - 1
                break
        return HubOutcome(hub, ok, failed, retries, error)

    def _poster(self, hub: str, url: str) -> Callable[[], Reply]:
        body, headers = publish_body(url), {"Content-Type": FORM}
        return lambda: self.send(
            "POST", hub, body=body, headers=headers, timeout=self.retry.timeout
        )

    def _record(self, outcome: HubOutcome, urls: int) -> None:
        before = self.store.publish_states().get(outcome.hub)
        result = "error" if outcome.failed else "ok"
        detail = outcome.error if outcome.failed else f"{urls} URL{'s' if urls != 1 else ''}"
        self.store.put_publish_state(
            PublishState(
                outcome.hub,
                self.clock.now(),
                result,
                detail,
                (before.ok if before else 0) + outcome.ok,
                (before.failed if before else 0) + outcome.failed,
            )
        )
