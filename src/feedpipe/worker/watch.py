"""File-system watch of the source (watchdog): a debounced callback after posts change."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from feedpipe.source.markdown import SUFFIXES

MAX_DELAY_FACTOR = 4  # a steady stream of events still fires after 4 × debounce


class Debouncer:
    """Calls `callback` once things have been quiet for `delay` seconds after a `poke`
    (or `MAX_DELAY_FACTOR × delay` after the first poke of a burst, whichever comes first)."""

    def __init__(self, callback: Callable[[], None], delay: float) -> None:
        self.callback = callback
        self.delay = delay
        self._cond = threading.Condition()
        self._first: float | None = None
        self._last = 0.0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="feedpipe-debounce", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        with self._cond:
            self._last = time.monotonic()
            if self._first is None:
                self._first = self._last
            self._cond.notify()

    def _due(self) -> float | None:
        """Seconds until the callback is due (≤ 0: now), None when nothing is pending."""
        if self._first is None:
            return None
        quiet = self._last + self.delay
        cap = self._first + self.delay * MAX_DELAY_FACTOR
        return min(quiet, cap) - time.monotonic()

    def _run(self) -> None:
        while True:
            with self._cond:
                wait = self._due()
                while not self._closed and (wait is None or wait > 0):
                    self._cond.wait(wait)
                    wait = self._due()
                if self._closed:
                    return
                self._first = None
            self.callback()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2)


class _PostEvents(FileSystemEventHandler):
    def __init__(self, wanted: Callable[[str], bool], poke: Callable[[], None]) -> None:
        self.wanted = wanted
        self.poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(p and self.wanted(os.fsdecode(p)) for p in paths) or (
            event.is_directory and event.event_type in ("deleted", "moved")
        ):
            self.poke()


def _is_post(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(SUFFIXES)


class SourceWatch:
    """Watches a posts folder (or one source file) and calls `on_change`, debounced."""

    def __init__(self, path: Path, on_change: Callable[[], None], debounce: float) -> None:
        self.debouncer = Debouncer(on_change, debounce)
        wanted: Callable[[str], bool] = _is_post
        folder, recursive = path, True
        if not path.is_dir():
            target = os.path.abspath(path)
            folder, recursive = path.parent, False

            def wanted(p: str) -> bool:
                return os.path.abspath(p) == target

        self.observer: BaseObserver = Observer()
        self.observer.schedule(
            _PostEvents(wanted, self.debouncer.poke), str(folder), recursive=recursive
        )
        self.observer.daemon = True

    def start(self) -> None:
        self.observer.start()

    def close(self) -> None:
        self.observer.stop()
        self.debouncer.close()
        if self.observer.is_alive():
            self.observer.join(timeout=2)
