"""Progress of long work on standard error: click's bar on a terminal, a plain line at every
tenth otherwise, nothing with --quiet; and what an interrupted command had done."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from feedpipe.cli.textgrid import plural

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

MIN_TOTAL = 200  # less work than this shows no progress (it is over in a moment)
STEPS = 10  # plain lines: one each time another tenth is done


@dataclass
class Meter:
    """Follows one piece of long work through `tick(done, total)`."""

    label: str  # "sync"
    unit: str  # "document"
    verb: str  # "synced": "300 of 600 documents synced"
    quiet: bool = False
    done: int = 0
    total: int | None = None
    started: float = field(default_factory=time.monotonic)
    shown: int = 0  # tenths already printed as plain lines
    bar: ProgressBar[int] | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    def tick(self, done: int, total: int) -> None:
        self.done, self.total = done, total
        if self.quiet or total < MIN_TOTAL:
            return
        if sys.stderr.isatty():
            self._draw(done, total)
        elif done * STEPS // total > self.shown:
            self.shown = done * STEPS // total
            click.echo(f"feedpipe: {self.label}: {self.line(done, total)}", err=True)

    def _draw(self, done: int, total: int) -> None:
        if self.bar is None:
            bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar = self.stack.enter_context(bar)
        self.bar.update(done - self.bar.pos)

    def line(self, done: int, total: int) -> str:
        """ "300 of 600 documents (50%), about 2 s left" """
        text = f"{done} of {plural(total, self.unit)} ({done * 100 // total}%)"
        if 0 < done < total:
            left = (time.monotonic() - self.started) * (total - done) / done
            text += f", about {left:.0f} s left"
        return text

    def summary(self) -> str | None:
        """ "300 of 600 documents synced", once the total is known."""
        if self.total is None:
            return None
        return f"{self.done} of {plural(self.total, self.unit)} {self.verb}"


@dataclass
class Progress:
    """The meters of the running command (the interrupt line names the newest one's count)."""

    quiet: bool = False
    meters: list[Meter] = field(default_factory=list)

    @contextmanager
    def meter(self, label: str, unit: str, verb: str) -> Iterator[Meter]:
        meter = Meter(label, unit, verb, self.quiet)
        self.meters.append(meter)
        with meter.stack:
            yield meter

    def summary(self) -> str | None:
        told = [m.summary() for m in self.meters if m.total is not None]
        return told[-1] if told else None
