"""Command line for the web surface: `feedpipe serve` (uvicorn) and `feedpipe inbound`."""

from __future__ import annotations

import os
import sys

import click

from feedpipe.cli.common import CliState, pass_state
from feedpipe.envnames import ACCESS_LOG_ENV, SECRET_KEY_ENV
from feedpipe.errors import ValidationError

MAX_INBOUND = 1 << 20


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


def sender(raw: bytes) -> str:
    """The From address of an RFC 5322 message; ValidationError if there is none."""
    import email
    from email import policy
    from email.utils import getaddresses

    message = email.message_from_bytes(raw, policy=policy.compat32)
    found = [addr for _, addr in getaddresses(message.get_all("From", [])) if "@" in addr]
    if len(found) != 1:
        raise ValidationError("the message has no single From address")
    return found[0]


@click.command()
@pass_state
def inbound(state: CliState) -> None:
    """Record a `mailto:` unsubscribe: read one message on stdin; its From address leaves."""
    address = sender(sys.stdin.buffer.read(MAX_INBOUND))
    with state.service() as service:
        found = service.subscriptions.unsubscribe_address(address)  # cancels what is queued
    if found is None:
        click.echo(f"inbound: {address} is not a subscriber; nothing to do")
    else:
        click.echo(f"inbound: unsubscribed {found.email}")
