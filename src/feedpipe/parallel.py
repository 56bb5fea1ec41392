"""Process pools for CPU-bound work (parsing, rendering) on every core, started safely."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

# Workers are forked from a clean server process (never from a threaded parent) that has
# already imported the heavy modules, so each starts in milliseconds.
PRELOAD = ["feedpipe.source.markdown", "feedpipe.feeds.build"]


def worker_count(jobs: int, threshold: int) -> int:
    """How many processes `jobs` units deserve: 1 below `threshold`, else one per core (≤ 8)."""
    cores = min(os.cpu_count() or 1, 8)
    return 1 if jobs < threshold or cores < 2 else cores


def process_pool(workers: int) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(workers, mp_context=context)
