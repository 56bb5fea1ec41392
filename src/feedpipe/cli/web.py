"""Command line for the web surface: `feedpipe serve` (uvicorn) and `feedpipe inbound`."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from feedpipe.cli.common import CliState, loaded, pass_state
from feedpipe.cli.textgrid import plural, table
from feedpipe.envnames import ACCESS_LOG_ENV, SECRET_KEY_ENV

if TYPE_CHECKING:
    from feedpipe.model.hygiene import InboundRecord


@click.command()
@click.option("--host", help="Interface to listen on (default: [web] host).")
@click.option("--port", type=int, help="Port (default: [web] port; 0 picks a free one).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--proxy-headers", is_flag=True, help="Trust X-Forwarded-For from the proxy.")
@click.option(
    "--access-log",
    is_flag=True,
    help="One line per request on stderr: method, path, status, bytes, duration; no client "
    "address, link tokens masked (default: [web] access_log, off).",
)
@pass_state
def serve(
    state: CliState,
    host: str | None,
    port: int | None,
    workers: int,
    proxy_headers: bool,
    access_log: bool,
) -> None:
    """Serve the feeds, subscribe/unsubscribe/preferences pages and the archive (uvicorn)."""
    from feedpipe.web.server import run_server

    settings = state.settings()
    for warning in _warnings():
        click.echo(f"feedpipe serve: warning: {warning}", err=True)
    os.environ.setdefault("FEEDPIPE_CONFIG", str(state.config or "config.toml"))
    if access_log:
        os.environ[ACCESS_LOG_ENV] = "1"
    loaded()
    run_server(
        host=host or settings.web.host,
        port=settings.web.port if port is None else port,
        workers=workers,
        proxy_headers=proxy_headers,
    )


def _warnings() -> list[str]:
    out = []
    if not os.environ.get(SECRET_KEY_ENV):
        out.append(f"${SECRET_KEY_ENV} is not set: links are signed with a key kept in the store")
    if not os.environ.get("FEEDPIPE_ADMIN_TOKEN"):
        out.append("$FEEDPIPE_ADMIN_TOKEN is not set: the admin API is disabled")
    return out


@click.command()
@click.option("--list", "list_", is_flag=True, help="List the messages kept for the operator.")
@pass_state
def inbound(state: CliState, list_: bool) -> None:
    """Process one message read on stdin (for an MTA pipe or alias): a bounce or DSN, a spam
    complaint (ARF), an auto-reply, or a `mailto:` unsubscribe; anything else is kept and
    listed by --list. A message is processed once (by its Message-ID)."""
    from feedpipe.mail.inbound import MAX_INBOUND

    with state.service() as service:
        if list_:
            _list_kept(service.inbound.unprocessed())
            return
        result = service.inbound.process(sys.stdin.buffer.read(MAX_INBOUND))
    click.echo(f"inbound: {result.kind.value} {result.key}")
    for line in result.lines:
        click.echo(f"  {line}")


def _list_kept(records: Sequence[InboundRecord]) -> None:
    rows = [
        [f"{r.received_at:%Y-%m-%d %H:%M}", r.kind, r.key[:60], r.summary[:100]] for r in records
    ]
    click.echo(table(["RECEIVED (UTC)", "KIND", "MESSAGE-ID", "SUMMARY"], rows))
    click.echo(plural(len(rows), "message") + " kept for the operator")
