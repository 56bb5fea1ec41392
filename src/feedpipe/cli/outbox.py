"""Command line for delivery: `feedpipe send` and `feedpipe outbox [retry]`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from feedpipe.cli.common import CliState, check_now, now_option, pass_state
from feedpipe.cli.textgrid import plural, table
from feedpipe.model import DispatchReport, Failure, OutboxState, SendReport

if TYPE_CHECKING:  # the dispatcher loads the mail transports: only when sending
    from feedpipe.outbox.dispatch import Progress


@contextmanager
def progress_bar(total: int) -> Iterator[Progress | None]:
    """A click progress bar over `total` messages on a terminal; nothing otherwise."""
    if not sys.stdout.isatty() or total == 0:
        yield None
        return
    with click.progressbar(length=total, label="sending") as bar:
        done = 0

        def update(report: DispatchReport) -> None:
            nonlocal done
            step = min(total, report.attempted + report.cancelled) - done
            if step > 0:
                bar.update(step)
                done += step

        yield update


def summary(report: SendReport) -> str:
    d, f = report.dispatch, report.fill
    line = (
        f"send: {f.due} due, {f.queued} queued in {plural(f.editions, 'new edition')}; "
        f"{d.sent} sent, {d.retry + d.throttled} to retry, {d.failed} failed, "
        f"{d.cancelled} cancelled ({d.seconds:.2f} s)"
    )
    waiting = report.counts[OutboxState.QUEUED] + report.counts[OutboxState.RETRY]
    if waiting:
        line += f"; {waiting} waiting"
    if d.server_down:
        line += " — the mail server could not be reached; messages stay queued"
    return line


def _send(state: CliState, now: str | None) -> None:
    """Plan the digests that are due, queue them in the outbox, and send until nothing is due."""
    if now:
        check_now(now)
    with state.service(now) as service:
        outbox = service.outbox
        filled = outbox.fill()
        due = sum(outbox.counts()[s] for s in (OutboxState.QUEUED, OutboxState.RETRY))
        with progress_bar(due) as progress:
            report = outbox.send_filled(filled, progress)
    click.echo(summary(report))


# Annotated (not decorated) so that cli.py sees the types through the import cycle.
send: click.Command = click.command("send")(now_option(pass_state(_send)))


def failure_rows(failures: list[Failure]) -> list[list[str]]:
    return [
        [
            str(f.outbox_id),
            f.at.strftime("%Y-%m-%d %H:%M") if f.at else "",
            f.recipient,
            str(f.attempts),
            str(f.code or ""),
            f.reply[:60],
        ]
        for f in failures
    ]


def _outbox(ctx: click.Context) -> None:
    """Show the outbox: messages by state and the 10 most recent failures."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(CliState)
    assert state is not None
    with state.service() as service:
        counts = service.outbox.counts()
        failures = service.outbox.failures(10)
    click.echo(table(["STATE", "MESSAGES"], [[s.value, str(n)] for s, n in counts.items()]))
    if failures:
        click.echo("\nmost recent failures:")
        headers = ["ID", "AT (UTC)", "RECIPIENT", "ATTEMPTS", "CODE", "REPLY"]
        click.echo(table(headers, failure_rows(failures)))


outbox: click.Group = click.group("outbox", invoke_without_command=True)(
    click.pass_context(_outbox)
)


@outbox.command("retry")
@now_option
@pass_state
def retry(state: CliState, now: str | None) -> None:
    """Queue every failed message again, due now (their attempt count starts over)."""
    if now:
        check_now(now)
    with state.service(now) as service:
        count = service.outbox.retry_failed()
    click.echo(f"re-queued {plural(count, 'failed message')}")
