"""Command line: a thin shell over the Feedpipe service (click)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from feedpipe import __version__
from feedpipe.clock import Clock, FixedClock, SystemClock, parse_now
from feedpipe.errors import ConfigError, FeedpipeError
from feedpipe.model import BuildReport, SyncReport
from feedpipe.service import Feedpipe
from feedpipe.settings import CONFIG_ENV, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    config: Path | None

    def settings(self) -> Settings:
        return load_settings(self.config)

    @contextmanager
    def service(self, now: str | None = None) -> Iterator[Feedpipe]:
        clock: Clock = FixedClock(parse_now(now)) if now else SystemClock()
        with Feedpipe.from_settings(self.settings(), clock) as service:
            yield service


def now_option(func: F) -> F:
    return click.option(
        "--now", metavar="ISO8601", help="Pretend the current time is this (UTC if naive)."
    )(func)


class FeedpipeGroup(click.Group):
    """Turns feedpipe errors into one clear line and a non-zero exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            click.echo(f"feedpipe: configuration error: {exc}", err=True)
            sys.exit(2)
        except FeedpipeError as exc:
            click.echo(f"feedpipe: error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=FeedpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedpipe")
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=CONFIG_ENV,
    help=f"Path to config.toml (or set {CONFIG_ENV}; default ./config.toml).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """feedpipe: turn a folder of posts into feeds and digest emails."""
    ctx.obj = CliState(config)


pass_state = click.make_pass_decorator(CliState)


def _echo_sync(report: SyncReport, verbose: bool) -> None:
    click.echo(
        f"sync: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped ({report.seconds:.2f} s)"
    )
    for skip in report.skipped:
        click.echo(f"  skipped {skip.key}: {skip.reason}", err=True)
    for dup in report.duplicates:
        click.echo(f"  duplicate {dup.key}: {dup.reason}", err=True)
    for warning in report.warnings if verbose else ():
        click.echo(f"  warning {warning.key}: {warning.reason}", err=True)
    if report.warnings and not verbose:
        click.echo(f"  {len(report.warnings)} warnings (use -v to list them)", err=True)


def _echo_build(report: BuildReport) -> None:
    click.echo(
        f"build: {report.feeds} feeds; {len(report.written)} files written, "
        f"{report.unchanged} unchanged, {len(report.removed)} removed "
        f"({report.seconds:.2f} s)"
    )


@cli.command()
@click.option("-v", "--verbose", is_flag=True, help="List every warning.")
@now_option
@pass_state
def sync(state: CliState, verbose: bool, now: str | None) -> None:
    """Ingest the source (posts folder, export or feed) into the store."""
    with state.service(now) as service:
        _echo_sync(service.sync(), verbose)


@cli.command()
@click.option("--no-sync", is_flag=True, help="Build from the store as it is.")
@click.option("--full", is_flag=True, help="Render every feed, not only the changed ones.")
@click.option("-v", "--verbose", is_flag=True, help="List every warning and written file.")
@now_option
@pass_state
def build(state: CliState, no_sync: bool, full: bool, verbose: bool, now: str | None) -> None:
    """Sync, then write the feeds that changed (RSS, Atom, JSON Feed, OPML)."""
    with state.service(now) as service:
        report = service.build(sync=not no_sync, full=full)
    if report.sync:
        _echo_sync(report.sync, verbose)
    _echo_build(report)
    for path in report.written if verbose else ():
        click.echo(f"  wrote {path}")


@cli.command("check-config")
@pass_state
def check_config(state: CliState) -> None:
    """Validate the configuration and print where things go."""
    settings = state.settings()
    click.echo(f"site:   {settings.site.title} <{settings.site.url}>")
    click.echo(f"source: {settings.source.kind} {settings.source.path}")
    click.echo(f"store:  {settings.store.url}")
    click.echo(f"feeds:  {settings.feeds.output_dir} ({', '.join(settings.feeds.formats)})")


def main() -> None:
    cli(prog_name="feedpipe")


from feedpipe.cli_subscribers import digest, subscribers  # noqa: E402

cli.add_command(subscribers)
cli.add_command(digest)

from feedpipe.cli_web import inbound, serve  # noqa: E402

cli.add_command(serve)
cli.add_command(inbound)

from feedpipe.cli_outbox import outbox, send  # noqa: E402

cli.add_command(send)
cli.add_command(outbox)

from feedpipe.cli_worker import run, status  # noqa: E402

cli.add_command(run)
cli.add_command(status)
