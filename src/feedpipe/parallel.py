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


_SIGINT = {signal.SIGINT}


def _block_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGINT)


def _unblock_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGINT)


def _child_ignores_sigint() -> None:
    _ignore_sigint()
    _unblock_sigint()  # a Ctrl-C that came during the fork is pending: ignored, not raised


# A Ctrl-C that lands while a worker is being forked would otherwise hit the child before its
# initializer runs (in an at-fork handler, with the parent's handler): SIGINT is blocked from
# just before each fork until the child ignores it (the parent gets its own Ctrl-C after).
os.register_at_fork(
    before=_block_sigint, after_in_parent=_unblock_sigint, after_in_child=_child_ignores_sigint
)


def process_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if threading.active_count() == 1:
        fork = multiprocessing.get_context("fork")
        return ProcessPoolExecutor(workers, mp_context=fork, initializer=_ignore_sigint)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint)
