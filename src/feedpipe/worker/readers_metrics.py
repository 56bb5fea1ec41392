"""Prometheus view of the feed readers `feedpipe serve` counted (read from the store on scrape)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from feedpipe.errors import FeedpipeError
from feedpipe.model.readers import ReaderRow
from feedpipe.worker.logs import LOGGER, event

LABELS = ["feed", "aggregator"]


class ReaderTotals(Collector):
    """Announced subscribers, fetches and 304s per feed and aggregator, and the sums."""

    def __init__(self, rows: Callable[[], Sequence[ReaderRow]]) -> None:
        self.rows = rows

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "subscribers": GaugeMetricFamily(
                "feedpipe_feed_subscribers",
                "Subscribers an aggregator last announced for a feed (User-Agent).",
                labels=LABELS,
            ),
            "fetches": GaugeMetricFamily(
                "feedpipe_feed_fetches", "Feed fetches counted.", labels=LABELS
            ),
            "not_modified": GaugeMetricFamily(
                "feedpipe_feed_not_modified", "Feed fetches answered 304.", labels=LABELS
            ),
        }
        total = GaugeMetricFamily(
            "feedpipe_feed_subscribers_total", "Subscribers announced by all aggregators."
        )
        try:
            found = self.rows()
            for r in found:
                labels = [r.feed, r.aggregator]
                if r.subscribers is not None:
                    families["subscribers"].add_metric(labels, r.subscribers)
                families["fetches"].add_metric(labels, r.fetches)
                families["not_modified"].add_metric(labels, r.not_modified)
            total.add_metric([], sum(r.subscribers or 0 for r in found))
        except FeedpipeError as exc:  # a scrape must not fail because the store is away
            event(logging.getLogger(LOGGER), "metrics.error", logging.WARNING, error=exc)
        yield from families.values()
        yield total
