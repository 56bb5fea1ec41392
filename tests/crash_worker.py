"""A dispatcher process for the crash test: drains the outbox over SMTP until nothing is left.

Usage: python tests/crash_worker.py STORE_URL SMTP_PORT BATCH_SIZE CONCURRENCY LEASE_SECONDS
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedpipe.clock import SystemClock
from feedpipe.mail import open_transport
from feedpipe.outbox.dispatch import Dispatcher, DispatchOptions
from feedpipe.settings import Settings, settings_from_mapping
from feedpipe.store import Store

SENDER = "digest@blog.example.com"


def worker_settings(url: str, port: int, concurrency: int) -> Settings:
    data = {
        "site": {"title": "Blog", "url": "https://blog.example.com"},
        "store": {"url": url},
        "email": {
            "transport": "smtp",
            "from_address": SENDER,
            "smtp": {"host": "127.0.0.1", "port": port, "concurrency": concurrency},
        },
    }
    return settings_from_mapping(data, Path(tempfile.gettempdir()), "crash", {})


async def drain(store: Store, settings: Settings, options: DispatchOptions) -> int:
    """Dispatch until no message is unfinished, waiting for leases of a killed run to expire."""
    transport = open_transport(settings)
    dispatcher = Dispatcher(store, transport, SystemClock(), options)
    try:
        while True:
            await dispatcher.run()
            due = store.outbox_next_due()
            if due is None:
                return dispatcher.report.sent
            wait = (due - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(min(max(wait, 0.01), 0.5))
    finally:
        await transport.aclose()


def main(argv: list[str]) -> int:
    url, port, batch, concurrency, lease = argv
    settings = worker_settings(url, int(port), int(concurrency))
    options = DispatchOptions(
        sender=SENDER,
        batch_size=int(batch),
        concurrency=int(concurrency),
        lease=timedelta(seconds=float(lease)),
    )
    with Store.open(url) as store:
        sent = asyncio.run(drain(store, settings, options))
    print(f"drained: {sent} sent by this run", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
