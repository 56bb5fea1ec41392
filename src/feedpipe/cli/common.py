"""What every command module shares: the CLI state (config → service), --now, pass_state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedpipe.clock import Clock, FixedClock, SystemClock, parse_now
from feedpipe.errors import ValidationError

if TYPE_CHECKING:  # settings load pydantic and the service the store: only when a command runs
    from feedpipe.service import Feedpipe
    from feedpipe.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    config: Path | None

    def settings(self) -> Settings:
        from feedpipe.settings import load_settings

        return load_settings(self.config)

    @contextmanager
    def service(self, now: str | None = None) -> Iterator[Feedpipe]:
        from feedpipe.service import Feedpipe

        clock: Clock = FixedClock(check_now(now)) if now else SystemClock()
        with Feedpipe.from_settings(self.settings(), clock) as service:
            yield service


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
