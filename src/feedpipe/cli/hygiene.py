"""Command line for list hygiene: `feedpipe suppressions list|add|remove|export`."""

from __future__ import annotations

import sys

import click

from feedpipe.cli.common import CliState, now_option, pass_state
from feedpipe.cli.textgrid import plural, table
from feedpipe.model.hygiene import SuppressionReason

REASONS = [r.value for r in SuppressionReason]


@click.group()
def suppressions() -> None:
    """The suppression list: addresses never mailed again (until they subscribe and confirm)."""


@suppressions.command("list")
@click.option("--reason", type=click.Choice(REASONS), help="Only entries with this reason.")
@pass_state
def list_(state: CliState, reason: str | None) -> None:
    """List suppressed addresses, newest first."""
    with state.service() as service:
        entries = service.subscriptions.suppressions.list(
            SuppressionReason(reason) if reason else None
        )
    rows = [
        [e.email, e.reason.value, e.source, f"{e.created_at:%Y-%m-%d %H:%M}", e.detail[:60]]
        for e in entries
    ]
    click.echo(table(["EMAIL", "REASON", "SOURCE", "SINCE (UTC)", "DETAIL"], rows))
    click.echo(plural(len(rows), "address", "addresses") + " suppressed")


@suppressions.command("add")
@click.argument("email")
@click.option(
    "--reason", type=click.Choice(REASONS), default="manual", show_default=True, help="Why."
)
@click.option("--detail", default="", help="A note kept with the entry.")
@now_option
@pass_state
def add(state: CliState, email: str, reason: str, detail: str, now: str | None) -> None:
    """Suppress EMAIL: nothing more is sent to it; its subscriber (if any) stops at once."""
    with state.service(now) as service:
        entry, added = service.subscriptions.suppressions.add(
            email, SuppressionReason(reason), "cli", detail
        )
    if added:
        click.echo(f"suppressed {entry.email} ({entry.reason})")
    else:
        click.echo(
            f"{entry.email} was already suppressed ({entry.reason} from {entry.source}, "
            f"{entry.created_at:%Y-%m-%d})"
        )


@suppressions.command("remove")
@click.argument("email")
@pass_state
def remove(state: CliState, email: str) -> None:
    """Take EMAIL off the list (a bounced subscriber still has to subscribe again)."""
    with state.service() as service:
        entry = service.subscriptions.suppressions.remove(email)
    click.echo(f"removed {entry.email} from the suppression list (was: {entry.reason})")


@suppressions.command("export")
@pass_state
def export(state: CliState) -> None:
    """Write the list as CSV (email,reason,source,created_at,detail) to standard output."""
    with state.service() as service:
        service.subscriptions.suppressions.export_csv(sys.stdout)
