"""Process pools for CPU-bound work (parsing, rendering) on every core, started safely."""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # multiprocessing is imported by whoever starts a pool, not by every command
    from concurrent.futures import ProcessPoolExecutor

# A single-threaded parent (the CLI) forks its workers directly: instant, and they share its
# imported modules copy-on-write. A threaded parent (the worker, the web server) must not
# fork, so its workers come from a clean server process that preloads the heavy modules.
PRELOAD = ["feedpipe.source.markdown", "feedpipe.source.fields", "feedpipe.feeds.build"]


def worker_count(jobs: int, threshold: int) -> int:
    """How many processes `jobs` units deserve: 1 below `threshold`, else one per core (≤ 8)."""
    cores = min(os.cpu_count() or 1, 8)
    return 1 if jobs < threshold or cores < 2 else cores


def _ignore_sigint() -> None:
    """Pool workers leave Ctrl-C to their parent (a terminal signals the whole process group):
    the parent stops the pool; no worker prints a traceback or outlives it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def process_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if threading.active_count() == 1:
        fork = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(workers, mp_context=fork, initializer=_ignore_sigint)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint)
