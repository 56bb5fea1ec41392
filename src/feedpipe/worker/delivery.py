"""Dispatch through the outbox until nothing is due or the worker stops (checked per batch)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from feedpipe.mail import Delivery, Envelope, Transport, open_transport
from feedpipe.model import DispatchReport
from feedpipe.outbox.dispatch import Dispatcher
from feedpipe.service import Feedpipe
from feedpipe.worker.jobs import Latency, Stop


class TimedTransport:
    """A transport that reports how long each `send_many` took and for how many messages."""

    def __init__(self, inner: Transport, on_latency: Latency) -> None:
        self.inner = inner
        self.on_latency = on_latency

    @property
    def paces_itself(self) -> bool:
        return self.inner.paces_itself

    async def send_many(self, envelopes: Sequence[Envelope]) -> list[Delivery]:
        started = time.perf_counter()
        try:
            return await self.inner.send_many(envelopes)
        finally:
            self.on_latency(time.perf_counter() - started, len(envelopes))

    async def aclose(self) -> None:
        await self.inner.aclose()


def dispatch_until(
    service: Feedpipe, lease: timedelta, stop: Stop, on_latency: Latency | None = None
) -> DispatchReport:
    """Claim, send and record batches (the outbox's concurrency) until none is due or `stop()`."""
    return asyncio.run(_dispatch(service, lease, stop, on_latency))


async def _dispatch(
    service: Feedpipe, lease: timedelta, stop: Stop, on_latency: Latency | None
) -> DispatchReport:
    transport: Transport = open_transport(service.settings)
    if on_latency is not None:
        transport = TimedTransport(transport, on_latency)
    outbox = service.outbox
    options = replace(outbox.options(), lease=lease)
    dispatcher = Dispatcher(service.store, transport, service.clock, options, outbox.rng)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(_loop(dispatcher, stop) for _ in range(options.concurrency)))
    finally:
        await transport.aclose()
    return replace(dispatcher.report, seconds=time.perf_counter() - started)


async def _loop(dispatcher: Dispatcher, stop: Stop) -> None:
    while not stop() and await dispatcher.step():
        pass
