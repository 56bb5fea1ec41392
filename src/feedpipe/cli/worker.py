"""`feedpipe run` (the scheduled worker) and `feedpipe status`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from feedpipe.cli.common import CliState, now_option, pass_state
from feedpipe.cli.textgrid import plural, table

if TYPE_CHECKING:
    from feedpipe.model import RunRecord
    from feedpipe.worker.status import WorkerStatus


@click.command()
@click.option(
    "--once", is_flag=True, help="One full cycle (sync, build, plan, dispatch), then exit."
)
@now_option
@pass_state
def run(state: CliState, once: bool, now: str | None) -> None:
    """Run the worker: keep feeds fresh and send digests on time (SIGTERM stops it gracefully)."""
    import logging

    from feedpipe.store import safe_url
    from feedpipe.worker.assemble import assemble
    from feedpipe.worker.logs import configure_logging, event

    if now and not once:
        raise click.UsageError("--now needs --once (a running worker follows the real clock)")
    settings = state.settings()
    configure_logging(settings.worker.log_format, settings.worker.log_level)
    log = logging.getLogger("feedpipe.worker")
    with state.service(now) as service:
        event(log, "worker.config", store=safe_url(settings.store.url), once=once)
        worker = assemble(service, once=once)
        if not once:
            sys.exit(worker.serve())
        worker.install_signals()
        code = worker.run_once()
        worker.stop(settings.worker.shutdown_timeout)
    event(log, "worker.once", failures=worker.failures)
    sys.exit(code)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--digests",
    "shown",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    metavar="N",
    help="How many upcoming digest send times to list.",
)
@click.option(
    "--readers", is_flag=True, help="Who fetches the feeds: aggregators, subscribers, 304s."
)
@now_option
@pass_state
def status(state: CliState, as_json: bool, shown: int, readers: bool, now: str | None) -> None:
    """Last runs of each job (worker or command line), outbox queue by state, the next digest
    send times and the leader; with --readers, the feeds' readers instead."""
    from feedpipe.worker.status import collect, to_json

    if readers:
        from feedpipe.cli.readers import readers_json, readers_table

        with state.service(now) as service:
            rows = service.reader_rows()
        click.echo(json.dumps(readers_json(rows), indent=2) if as_json else readers_table(rows))
        return
    with state.service(now) as service:
        found = collect(service, shown)
    if as_json:
        click.echo(json.dumps(to_json(found), indent=2))
    else:
        click.echo(status_text(found))


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    if seconds < 0:
        return then.strftime("%Y-%m-%d %H:%M UTC")
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return then.strftime("%Y-%m-%d %H:%M UTC")


def _counts(run: RunRecord) -> str:
    return ", ".join(f"{k} {v}" for k, v in run.counts.items() if v) or "-"


def _deliverability(found: dict[str, Any]) -> list[str]:
    """The rates as an aligned table, then the inbound messages kept for the operator."""
    if not found:
        return []
    rows: list[list[str]] = []
    named = [*found["windows"].items(), *((e["edition"][:12], e) for e in found["editions"])]
    for label, r in named:
        rows.append(
            [
                label,
                str(r["sent"]),
                f"{r['bounces']} ({_percent(r['bounce_rate'])})",
                f"{r['complaints']} ({_percent(r['complaint_rate'])})",
            ]
        )
    inbound = found["inbound"]
    kept = inbound.get("unprocessed", 0)
    line = f"inbound: {inbound.get('processed', 0)} processed, {kept} kept for the operator"
    grid = table(["DELIVERABILITY", "SENT", "BOUNCES", "COMPLAINTS"], rows)
    return [grid, line + (" (feedpipe inbound --list)" if kept else "")]


def _percent(rate: float) -> str:
    return f"{rate:.2%}"


def status_text(status: WorkerStatus) -> str:
    """The human view: a few tables."""
    from feedpipe.model import JOBS
    from feedpipe.worker.status import sending_line

    lines = [f"store   {status.store}", f"leader  {status.leader or 'no worker running'}"]
    lines.append(sending_line(status.sending))
    rows: list[list[str]] = []
    for job in JOBS:
        run = status.runs.get(job)
        if run is None and job == "publish":  # WebSub: shown once a hub was notified
            continue
        if run is None:
            rows.append([job, "never", "", "", "", ""])
            continue
        detail = run.error if run.error else _counts(run)
        rows.append(
            [
                job,
                _ago(status.now, run.started_at),
                f"{run.seconds:.2f} s",
                run.outcome,
                _ago(status.now, run.last_ok_at),
                detail or "",
            ]
        )
    lines += ["", table(["JOB", "LAST RUN", "TOOK", "OUTCOME", "LAST OK", "COUNTS / ERROR"], rows)]
    if status.queue is not None:
        queue = [[state, str(n)] for state, n in status.queue.items()]
        lines += ["", table(["OUTBOX", "MESSAGES"], queue)]
    if status.publishes:
        hubs = [
            [s.hub, _ago(status.now, s.at), s.result, s.detail, str(s.ok), str(s.failed)]
            for s in status.publishes.values()
        ]
        header = ["WEBSUB HUB", "LAST PUBLISH", "RESULT", "DETAIL", "OK", "FAILED"]
        lines += ["", table(header, hubs)]
    due = [[at.strftime("%Y-%m-%d %H:%M UTC"), str(n)] for at, n in status.next_due]
    lines += ["", table(["NEXT DIGESTS", "SUBSCRIBERS"], due)]
    lines += ["", *_deliverability(status.deliverability)]
    if len(due) < status.due_instants:
        lines.append(
            f"({len(due)} of {plural(status.due_instants, 'send time')} shown; "
            "--digests N for more)"
        )
    if status.schedules:
        rows = [[text, str(n)] for text, n in status.schedules]
        lines += ["", table(["SCHEDULE", "SUBSCRIBERS"], rows)]
    return "\n".join(lines)
