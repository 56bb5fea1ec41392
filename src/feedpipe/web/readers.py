"""Who reads the feeds: fetches counted per feed and client in memory, flushed to the store.

The client is its User-Agent with any announced count taken out ("123 subscribers" → "N
subscribers"), so a count that changes keeps one row; the aggregator is a known name found in
it, else its product token. Nothing about the connection (no IP address) is kept. Counting is
a dict update on the request path (the User-Agent parse is cached); the store write happens
at most every `flush_seconds`, in a thread, after a response has gone out.

`refuse_after` = N: a client that fetched the same unchanged feed without validators more
than N times in an hour gets 429 with Retry-After until its oldest such fetch is an hour old.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from feedpipe.errors import FeedpipeError
from feedpipe.model.readers import ReaderTally
from feedpipe.store import Store

KNOWN = (  # (name, lower-case marker in the User-Agent)
    ("Feedly", "feedly"),
    ("Inoreader", "inoreader"),
    ("NewsBlur", "newsblur"),
    ("Feedbin", "feedbin"),
    ("The Old Reader", "theoldreader"),
    ("Miniflux", "miniflux"),
    ("FreshRSS", "freshrss"),
    ("Feedspot", "feedspot"),
    ("BazQux", "bazqux"),
    ("Tiny Tiny RSS", "tiny tiny rss"),
    ("NetNewsWire", "netnewswire"),
    ("Feeder", "feeder/"),
)
COUNT = re.compile(r"(\d[\d,]*)\s+(subscribers?|readers?)\b", re.IGNORECASE)
PRODUCT = re.compile(r"[^\s/;()]+")
MAX_CLIENT = 300
HOUR = 3600.0
log = logging.getLogger("feedpipe.web")
MAX_KEYS = 50_000  # tallies or refusal windows kept in memory before the oldest go


@dataclass(frozen=True, slots=True)
class Agent:
    """What a User-Agent tells: the client key, its aggregator, an announced count."""

    client: str
    aggregator: str
    subscribers: int | None


@functools.lru_cache(maxsize=4096)
def parse_agent(user_agent: str) -> Agent:
    """Client, aggregator and subscriber count of a User-Agent (cached: readers repeat)."""
    ua = user_agent.strip()
    if not ua:
        return Agent("(none)", "(none)", None)
    found = COUNT.search(ua)
    count = int(found.group(1).replace(",", "")) if found else None
    client = COUNT.sub(lambda m: f"N {m.group(2)}", ua)[:MAX_CLIENT]
    lower = ua.lower()
    name = next((n for n, marker in KNOWN if marker in lower), None)
    if name is None:
        token = PRODUCT.search("" if ua.startswith("Mozilla/") else ua)
        name = token.group(0)[:100] if token else "(browser)"
    return Agent(client, name, count)


@dataclass(slots=True)
class _Tally:
    aggregator: str
    subscribers: int | None
    fetches: int = 0
    not_modified: int = 0
    conditional: int = 0
    last_seen: datetime | None = None


class ReaderLog:
    """Counts feed fetches and flushes them to the store (see module doc)."""

    def __init__(
        self,
        store: Store,
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
        flush_seconds: float = 10.0,
        refuse_after: int | None = None,
    ) -> None:
        self.store = store
        self.now = now
        self.monotonic = monotonic
        self.flush_seconds = flush_seconds
        self.refuse_after = refuse_after
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._windows: dict[tuple[str, str], tuple[bytes, deque[float]]] = {}
        self._lock = threading.Lock()
        self._flushing = False
        self._last_flush = monotonic()

    def record(self, feed: str, user_agent: str, status: int, conditional: bool) -> None:
        """One fetch of `feed` answered with `status` (200 or 304)."""
        agent = parse_agent(user_agent)
        key = (feed, agent.client)
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= MAX_KEYS:
                self.flush()
            tally = self._tallies[key] = _Tally(agent.aggregator, agent.subscribers)
        tally.fetches += 1
        tally.not_modified += status == 304
        tally.conditional += conditional
        if agent.subscribers is not None:
            tally.subscribers = agent.subscribers
        tally.last_seen = self.now()

    def refused(self, feed: str, user_agent: str, etag: bytes) -> float | None:
        """For an unconditional fetch of `feed` (current ETag `etag`): the seconds to wait if
        this client fetched it unchanged unconditionally `refuse_after` times this hour."""
        limit = self.refuse_after
        if limit is None:
            return None
        key = (feed, parse_agent(user_agent).client)
        now = self.monotonic()
        seen = self._windows.get(key)
        if seen is None or seen[0] != etag:  # first time, or the feed changed: a fresh window
            if len(self._windows) >= MAX_KEYS:
                self._windows.pop(next(iter(self._windows)))
            seen = self._windows[key] = (etag, deque())
        times = seen[1]
        while times and times[0] <= now - HOUR:
            times.popleft()
        if len(times) >= limit:
            return max(1.0, math.ceil(times[0] + HOUR - now))
        times.append(now)
        return None

    def due(self) -> bool:
        """Whether a flush is due (and none is running)."""
        return not self._flushing and self.monotonic() - self._last_flush >= self.flush_seconds

    def flush(self) -> int:
        """Write the counts gathered so far to the store; returns the rows written."""
        with self._lock:
            self._flushing = True
            taken, self._tallies = self._tallies, {}
            self._last_flush = self.monotonic()
        try:
            rows = [
                ReaderTally(
                    feed,
                    client,
                    t.aggregator,
                    t.subscribers,
                    t.fetches,
                    t.not_modified,
                    t.conditional,
                    t.last_seen or self.now(),
                )
                for (feed, client), t in taken.items()
            ]
            self.store.add_reader_tallies(rows)
            return len(rows)
        except FeedpipeError as exc:  # the store is away: keep the counts for the next flush
            log.warning("feed reader counts not written (kept for the next try): %s", exc)
            with self._lock:
                for key, t in taken.items():
                    self._merge(key, t)
            return 0
        finally:
            self._flushing = False

    def _merge(self, key: tuple[str, str], old: _Tally) -> None:
        now = self._tallies.get(key)
        if now is None:
            self._tallies[key] = old
            return
        now.fetches += old.fetches
        now.not_modified += old.not_modified
        now.conditional += old.conditional
        if now.subscribers is None:
            now.subscribers = old.subscribers
