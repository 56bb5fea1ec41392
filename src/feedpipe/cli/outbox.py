"""Command line for delivery: `feedpipe send` and `feedpipe outbox [retry|resume]`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from feedpipe.cli.common import CliState, Exit, check_now, fail, now_option, pass_state
from feedpipe.cli.progress import Meter
from feedpipe.cli.textgrid import plural, table

if TYPE_CHECKING:  # the dispatcher loads the mail transports: only when sending
    from collections.abc import Mapping

    from feedpipe.model import DispatchReport, Failure, FailureGroup, OutboxState, SendReport
    from feedpipe.outbox.dispatch import Progress
    from feedpipe.outbox.service import Outage


def message_ticks(meter: Meter, total: int) -> Progress:
    """The dispatcher's progress (a report after each message) as ticks of `meter`."""

    def update(report: DispatchReport) -> None:
        meter.tick(min(total, report.attempted + report.cancelled), total)

    return update


def still_to_send(counts: Mapping[OutboxState, int]) -> int:
    """Messages queued or waiting for a retry (the model loads here, not with `--help`)."""
    from feedpipe.model import OutboxState

    return counts[OutboxState.QUEUED] + counts[OutboxState.RETRY]


def summary(report: SendReport) -> str:
    d, f = report.dispatch, report.fill
    line = (
        f"send: {f.due} due, {f.queued} queued in {plural(f.editions, 'new edition')}; "
        f"{d.sent} sent, {d.retry + d.throttled} to retry, {d.failed} failed, "
        f"{d.cancelled} cancelled ({d.seconds:.2f} s)"
    )
    waiting = still_to_send(report.counts)
    if waiting:
        line += f"; {waiting} waiting"
    if d.paused:
        line += f" — sending paused: {d.paused} (fix it, then `feedpipe outbox resume`)"
    if d.limited:
        line += f" — {d.limited}"
    return line


def verdict(report: SendReport, outage: Outage | None = None) -> tuple[Exit, str | None]:
    """The exit status of a send and the one line that says why it is not 0 (`outage`: what
    failed when nothing more could be delivered, from OutboxService.outage)."""
    d = report.dispatch
    waiting = still_to_send(report.counts)
    if d.server_down:
        line = outage.line if outage else f"mail server unreachable: {d.down_reason}"
        code = Exit.PARTLY if outage and outage.local else Exit.UNREACHABLE  # a folder: 1
        return code, (
            f"{line}. Nothing more was sent; queued for "
            f"the next `feedpipe send` or worker: {plural(waiting, 'message')}"
        )
    if d.paused:
        return Exit.PARTLY, (
            f"sending paused: {d.paused}; fix it, then `feedpipe outbox resume` "
            f"(nothing is lost: {plural(waiting, 'message')} waiting)"
        )
    unsent = d.retry + d.throttled + d.failed
    if unsent:
        return Exit.PARTLY, (
            f"{plural(unsent, 'message')} not sent ({d.failed} failed, "
            f"{d.retry + d.throttled} to retry): `feedpipe outbox` shows the replies"
        )
    return Exit.DONE, None


def _send(state: CliState, now: str | None) -> None:
    """Plan the digests that are due, queue them in the outbox, and send until nothing is due.

    Exit status 0 when everything due was sent, 1 when some messages were not (see
    `feedpipe outbox`), 3 when the mail server could not be reached (the messages stay queued).
    """
    from feedpipe.model import RunRecord
    from feedpipe.parallel import interrupt_pending
    from feedpipe.worker.runs import RunLog, cli_identity, dispatch_run, fill_counts

    if now:
        check_now(now)
    with state.long_work(now) as service:
        outbox, runs, who = service.outbox, RunLog(service), cli_identity("send")
        started_at, started = service.clock.now(), time.perf_counter()
        filled = outbox.fill()
        seconds = time.perf_counter() - started
        runs.record(RunRecord("plan", who, started_at, seconds, "ok", fill_counts(filled)))
        due = still_to_send(outbox.counts())
        started_at = service.clock.now()
        with state.progress.meter("send", "message", "sent") as meter:
            report = outbox.send_filled(filled, message_ticks(meter, due), stop=interrupt_pending)
            outage = outbox.outage(report.dispatch)
            line = outage.line if outage else None
            runs.record(dispatch_run(who, started_at, report.dispatch, line))
            meter.tick(meter.done, due)
    click.echo(summary(report))
    code, why = verdict(report, outage)
    if why:
        fail(code, why)


# Annotated (not decorated) so that cli.py sees the types through the import cycle.
send: click.Command = click.command("send")(now_option(pass_state(_send)))


def failure_rows(failures: list[Failure]) -> list[list[str]]:
    return [
        [
            str(f.outbox_id),
            f.at.strftime("%Y-%m-%d %H:%M") if f.at else "",
            f.recipient,
            f.state.value,
            str(f.attempts),
            str(f.code or ""),
            one_line(f.reply, 70),
        ]
        for f in failures
    ]


def group_rows(groups: list[FailureGroup]) -> list[list[str]]:
    return [
        [str(g.messages), g.state.value, str(g.code or ""), one_line(g.reply, 90)] for g in groups
    ]


def one_line(text: str, width: int) -> str:
    """A reply on one line of at most `width` characters (the one text rule, model.text)."""
    from feedpipe.model.text import clean_line, truncate

    return truncate(clean_line(text), width, words=False)


def _outbox(ctx: click.Context) -> None:
    """Show the outbox: messages by state, failing messages grouped by their last reply, and
    the 10 most recent failing messages (failed, or waiting to retry) with their last reply."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(CliState)
    assert state is not None
    with state.service() as service:
        counts = service.outbox.counts()
        groups = service.outbox.failure_groups(10)
        failures = service.outbox.failures(10)
    click.echo(table(["STATE", "MESSAGES"], [[s.value, str(n)] for s, n in counts.items()]))
    if groups:
        click.echo("\nfailing messages by reason:")
        click.echo(table(["MESSAGES", "STATE", "CODE", "LAST REPLY"], group_rows(groups)))
        click.echo("\nmost recent failing messages:")
        headers = ["ID", "AT (UTC)", "RECIPIENT", "STATE", "ATTEMPTS", "CODE", "LAST REPLY"]
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


@outbox.command("resume")
@pass_state
def resume(state: CliState) -> None:
    """Resume sending paused by the circuit breaker, at once (after fixing what it named)."""
    with state.service() as service:
        was = service.outbox.resume()
    if was.is_open:
        click.echo(f"sending resumed (it was paused: {was.paused})")
    else:
        click.echo("sending was not paused")


@click.command("dkim-record")
@pass_state
def dkim_record(state: CliState) -> None:
    """Print the DNS TXT record of each DKIM key ([email] dkim_*), one line each."""
    from feedpipe.mail import DkimSigner

    signer = DkimSigner.from_settings(state.settings().email)
    if signer is None:
        raise click.UsageError("set [email] dkim_key_path, dkim_selector and dkim_domain first")
    for key in signer.keys:
        value = key.record()
        chunks = " ".join(f'"{value[i : i + 255]}"' for i in range(0, len(value), 255))
        click.echo(f"{signer.record_name(key)}. IN TXT {chunks}")
