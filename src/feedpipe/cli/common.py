"""What every command module shares: the CLI state (config → service), --now, pass_state."""

from __future__ import annotations

import enum
import gc
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from feedpipe.cli.progress import Progress
from feedpipe.clock import Clock, FixedClock, SystemClock, parse_now
from feedpipe.errors import ValidationError

if TYPE_CHECKING:  # settings load pydantic and the service the store: only when a command runs
    from feedpipe.service import Feedpipe
    from feedpipe.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


class Exit(enum.IntEnum):
    """Exit statuses of every command (README "Exit statuses")."""

    DONE = 0  # the command did all of its job
    PARTLY = 1  # it failed, or did part of its job (some messages not sent, a bad argument)
    CONFIG = 2  # configuration, environment or usage error: nothing was done
    UNREACHABLE = 3  # the mail server could not be reached: nothing sent, messages kept queued
    LOCKED = 4  # another process held the store's lock past [store] busy_timeout_seconds
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


def fail(code: Exit, message: str) -> NoReturn:
    """One line on standard error, then exit with `code`."""
    click.echo(f"feedpipe: {message}", err=True)
    sys.exit(code)


@dataclass
class CliState:
    config: Path | None
    progress: Progress = field(default_factory=Progress)

    def settings(self) -> Settings:
        from feedpipe.settings import load_settings

        return load_settings(self.config)

    @contextmanager
    def service(self, now: str | None = None) -> Iterator[Feedpipe]:
        from feedpipe.service import Feedpipe

        clock: Clock = FixedClock(check_now(now)) if now else SystemClock()
        with Feedpipe.from_settings(self.settings(), clock) as service:
            loaded()
            yield service

    @contextmanager
    def long_work(self, now: str | None = None) -> Iterator[Feedpipe]:
        """The service for work that commits batch by batch (sync, build, import, send):
        Ctrl-C and SIGTERM are taken between batches (`parallel.held_interrupts`)."""
        from feedpipe.parallel import held_interrupts

        with held_interrupts(), self.service(now) as service:
            yield service


def loaded() -> None:
    """The command's modules are loaded: what they made is frozen (no collection scans it
    again) and garbage collection resumes. Nothing unless `feedpipe.__main__` paused it."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def now_option(func: F) -> F:
    return click.option(
        "--now", metavar="ISO8601", help="Pretend the current time is this (UTC if naive)."
    )(func)


pass_state = click.make_pass_decorator(CliState)


def check_now(text: str) -> datetime:
    """A `--now` value as aware UTC; a clear one-line error when it is not ISO 8601."""
    try:
        return parse_now(text)
    except ValueError:
        raise ValidationError(
            f"--now {text!r} is not an ISO 8601 time (e.g. 2026-11-22T08:00:00Z)"
        ) from None
