"""Process pools for CPU-bound work (parsing, rendering) on every core, started and stopped
safely; Ctrl-C held back to safe points of long work; the progress hook long work reports to."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # multiprocessing is imported by whoever starts a pool, not by every command
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.context import BaseContext

T = TypeVar("T")
Tick = Callable[[int, int], None]  # long work reports (done so far, total) after each step

# A single-threaded parent (the CLI) forks its workers directly: instant, and they share its
# imported modules copy-on-write. A threaded parent (the worker, the web server) must not
# fork, so its workers come from a clean server process that preloads the heavy modules.
PRELOAD = ["feedpipe.source.markdown", "feedpipe.source.fields", "feedpipe.feeds.build"]
POLL = 0.05  # seconds between looks at a held-back Ctrl-C while waiting for a worker
PARENT_POLL = 0.5  # seconds between a worker's looks at its parent (when prctl is missing)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def release_memory() -> None:
    """Hand the heap freed by a large job back to the system (glibc's malloc keeps it): the
    processes forked next inherit less, and the whole tree's peak is smaller. A no-op where
    there is no malloc_trim."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def worker_count(jobs: int, threshold: int) -> int:
    """How many processes `jobs` units deserve: 1 below `threshold`, else one per core (≤ 8)."""
    cores = min(os.cpu_count() or 1, 8)
    return 1 if jobs < threshold or cores < 2 else cores


# -- Ctrl-C held back -------------------------------------------------------------------------
# KeyboardInterrupt raised at an arbitrary bytecode breaks what it lands in: a pool half
# started ("cannot join thread before it is started"), a queue lock, a database connection
# being returned. Inside `held_interrupts()` SIGINT and SIGTERM are only noted; `checkpoint()`
# (called by every progress tick and while waiting for pool workers) raises them where the
# work can stop cleanly: between batches, each of which commits on its own.


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt at a checkpoint (exit status 143)."""


_held: list[int] = []  # signals noted inside held_interrupts(), in order
_abandoned: list[int] = []  # one entry per pool stopped mid-work (see `exit_if_abandoned`)
_saved: dict[int, object] = {}  # their handlers from before the hold


def _note(signum: int, _frame: FrameType | None) -> None:
    if signum in _held:  # the second one: at once, wherever this is
        _held.remove(signum)
        _deliver(signum)
        return
    _held.append(signum)


def _deliver(signum: int) -> None:
    """A held-back signal, as it would have gone without the hold."""
    handler = _saved.get(signum, signal.SIG_DFL)
    if callable(handler):
        handler(signum, None)  # SIGINT's usual handler raises KeyboardInterrupt
    elif handler == signal.SIG_DFL:
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def interrupt_pending() -> bool:
    """True once a held-back SIGINT or SIGTERM waits for the next checkpoint."""
    return bool(_held)


def checkpoint() -> None:
    """Deliver held-back signals now: Ctrl-C raises KeyboardInterrupt, SIGTERM Terminated."""
    while _held:
        _deliver(_held.pop(0))


@contextmanager
def held_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back to `checkpoint()`s (and the end of the block); a second
    one of the same kind goes at once. Nested, the outermost block holds them; a no-op off
    the main thread (whose owner — the worker, the web server — handles signals its own way)."""
    if threading.current_thread() is not threading.main_thread() or _saved:
        yield
        return
    _held.clear()
    _saved.update({s: signal.signal(s, _note) for s in (signal.SIGINT, signal.SIGTERM)})
    ok = False
    try:
        yield
        ok = True
    finally:
        for signum, handler in _saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        try:
            if ok:
                checkpoint()
        finally:
            _held.clear()
            _saved.clear()


# -- pools ------------------------------------------------------------------------------------


def _worker_start(parent: int) -> None:
    """Pool worker initializer: leave Ctrl-C to the parent (a terminal signals the whole
    process group; the parent stops the pool), and die with the parent, however it ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """PR_SET_PDEATHSIG (Linux: SIGKILL when the process that forked this one ends), then a
    thread that watches the parent anyway (other systems; a parent gone before the prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watcher alone
        pass
    forker = os.getppid()
    if forker == 1 or not _alive(parent):
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent, forker), daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(parent: int, forker: int) -> None:
    while os.getppid() == forker and _alive(parent):
        time.sleep(PARENT_POLL)
    os._exit(1)


_SIGINT = {signal.SIGINT}


def _block_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGINT)


def _unblock_sigint() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGINT)


def _child_ignores_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _unblock_sigint()  # a Ctrl-C that came during the fork is pending: ignored, not raised


# A Ctrl-C that lands while a worker is being forked would otherwise hit the child before its
# initializer runs (in an at-fork handler, with the parent's handler): SIGINT is blocked from
# just before each fork until the child ignores it (the parent gets its own Ctrl-C after).
os.register_at_fork(
    before=_block_sigint, after_in_parent=_unblock_sigint, after_in_child=_child_ignores_sigint
)


class Pool:
    """A started process pool; `wait` a future's result with Ctrl-C taken at a checkpoint."""

    def __init__(self, executor: ProcessPoolExecutor) -> None:
        self.executor = executor

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        return self.executor.submit(fn, *args)

    def wait(self, future: Future[T]) -> T:
        from concurrent.futures import wait

        while not wait([future], timeout=POLL).done:
            checkpoint()
        checkpoint()
        return future.result()

    def map(self, fn: Callable[..., T], *iterables: Iterable[object]) -> Iterator[T]:
        """`fn` over the zipped iterables, results in order (all submitted at once)."""
        futures = [self.submit(fn, *args) for args in zip(*iterables, strict=True)]
        for future in futures:
            yield self.wait(future)


@contextmanager
def process_pool(workers: int) -> Iterator[Pool]:
    """A pool of `workers` processes, shut down on every way out of the block: waited for
    when it ends normally, its workers stopped at once on an exception, Ctrl-C or SIGTERM.
    Workers also die with this process if it is killed (`_die_with_parent`)."""
    with held_interrupts():  # never half started or half stopped
        executor = _start(workers)
        try:
            executor.submit(int).result()  # workers and manager thread up now, not mid-work
            yield Pool(executor)
        except BaseException:
            _stop(executor)
            raise
        executor.shutdown(wait=True)


def _start(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context: BaseContext = multiprocessing.get_context("fork")
    if threading.active_count() > 1:
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(PRELOAD)
        context = server
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_start, initargs=(os.getpid(),)
    )


def _stop(executor: ProcessPoolExecutor) -> None:
    """Cancel what has not started, end the workers (SIGTERM, then SIGKILL), reap them."""
    processes = list((executor._processes or {}).values())
    _abandoned.append(len(processes))
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=2)
        if process.is_alive():
            process.kill()
            process.join(timeout=2)
    executor.shutdown(wait=True)


def exit_if_abandoned(code: int) -> None:
    """End the process at once with `code` if a pool was stopped mid-work; else return.

    A worker stopped while it was writing a result leaves half a message in the result pipe,
    and concurrent.futures' manager thread then waits for the rest forever: the interpreter's
    exit joins that thread and hangs (seen once in ~20 interrupted imports under load). The
    command has finished (its store work committed or rolled back, its line printed, the
    workers reaped), so nothing is left to do but flush and leave."""
    if not _abandoned:
        return
    import logging
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
