"""Frozen types of feed readers counted by `feedpipe serve`: aggregated tallies, no addresses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ReaderTally:
    """Fetches of one feed by one client (its User-Agent, counts stripped) since the last flush."""

    feed: str  # URL path, e.g. /category/rust/feed.xml
    client: str
    aggregator: str  # a known aggregator's name, else the User-Agent's product token
    subscribers: int | None  # the latest count the client announced (None: none announced)
    fetches: int
    not_modified: int  # answered 304
    conditional: int  # sent If-None-Match or If-Modified-Since
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ReaderRow:
    """One line of `feedpipe status --readers`: a feed and an aggregator, all its clients."""

    feed: str
    aggregator: str
    subscribers: int | None  # the latest count announced for this feed by this aggregator
    last_seen: datetime
    fetches: int
    not_modified: int
    conditional: int

    @property
    def ratio_304(self) -> float:
        return self.not_modified / self.fetches if self.fetches else 0.0

    @property
    def never_conditional(self) -> bool:
        """No fetch ever carried a validator (If-None-Match / If-Modified-Since)."""
        return self.conditional == 0
