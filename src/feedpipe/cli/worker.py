"""`feedpipe run` (the scheduled worker) and `feedpipe status`."""

from __future__ import annotations

import json
import logging
import sys

import click

from feedpipe.cli.common import CliState, now_option, pass_state
from feedpipe.worker.logs import configure_logging, event, safe_url


@click.command()
@click.option(
    "--once", is_flag=True, help="One full cycle (sync, build, plan, dispatch), then exit."
)
@now_option
@pass_state
def run(state: CliState, once: bool, now: str | None) -> None:
    """Run the worker: keep feeds fresh and send digests on time (SIGTERM stops it gracefully)."""
    from feedpipe.worker.assemble import assemble

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
@now_option
@pass_state
def status(state: CliState, as_json: bool, now: str | None) -> None:
    """Last worker runs, outbox queue by state, next due digests and the leader."""
    from feedpipe.worker.status import collect, table, to_json

    with state.service(now) as service:
        found = collect(service)
    if as_json:
        click.echo(json.dumps(to_json(found), indent=2))
    else:
        click.echo(table(found))
