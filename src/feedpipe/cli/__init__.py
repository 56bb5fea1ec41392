"""Command line: a thin shell over the Feedpipe service (click).

Loading it stays cheap (`--help` and `--version` import no database, template, web or mail
library; tests/test_startup.py checks): every command imports what it needs when it runs.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from feedpipe.cli.common import CliState, Exit, fail, now_option, pass_state
from feedpipe.cli.lazy import LazyCommand, LazyGroup
from feedpipe.cli.progress import Progress
from feedpipe.cli.textgrid import plural
from feedpipe.envnames import CONFIG_ENV
from feedpipe.errors import ConfigError, FeedpipeError, StoreLockedError

if TYPE_CHECKING:
    from feedpipe.model import BuildReport, SyncReport
    from feedpipe.service import Feedpipe


# The commands defined in their own modules, imported when one is run (`--help` lists them
# from here): name → where it lives and the first sentence of its help.
LAZY = {
    "check-config": LazyCommand(
        "feedpipe.cli.checkconfig", "check_config",
        "Validate the configuration and check what a run will need: the source is readable, "
        "the output and outbox folders writable, the store reachable and migrated, the SMTP "
        "host resolvable (--connect: a real session), the DKIM key usable, [web] base_url "
        "public.",
    ),
    "subscribers": LazyCommand(
        "feedpipe.cli.subscribers", "subscribers", "Manage digest subscribers."
    ),
    "suppressions": LazyCommand(
        "feedpipe.cli.hygiene", "suppressions",
        "The suppression list: addresses never mailed again (until they subscribe and confirm).",
    ),
    "digest": LazyCommand("feedpipe.cli.subscribers", "digest", "Plan digest emails."),
    "simulate": LazyCommand(
        "feedpipe.cli.simulate", "simulate",
        "Run the real planner from --from to --to on a simulated clock (a worker planning "
        "every [worker] plan_seconds), posts scheduled for later included, and print every "
        "send: UTC and local time, subscriber, schedule, posts and estimated size.",
    ),
    "send": LazyCommand(
        "feedpipe.cli.outbox", "send",
        "Plan the digests that are due, queue them in the outbox, and send until nothing is due.",
    ),
    "outbox": LazyCommand(
        "feedpipe.cli.outbox", "outbox",
        "Show the outbox: messages by state, failing messages grouped by their last reply, and "
        "the 10 most recent failing messages (failed, or waiting to retry) with their last "
        "reply.",
    ),
    "dkim-record": LazyCommand(
        "feedpipe.cli.outbox", "dkim_record",
        "Print the DNS TXT record of each DKIM key ([email] dkim_*), one line each.",
    ),
    "run": LazyCommand(
        "feedpipe.cli.worker", "run",
        "Run the worker: keep feeds fresh and send digests on time (SIGTERM stops it "
        "gracefully).",
    ),
    "status": LazyCommand(
        "feedpipe.cli.worker", "status",
        "Last runs of each job (worker or command line), outbox queue by state, the next "
        "digest send times and the leader; with --readers, the feeds' readers instead.",
    ),
    "serve": LazyCommand(
        "feedpipe.cli.web", "serve",
        "Serve the feeds, subscribe/unsubscribe/preferences pages and the archive (uvicorn).",
    ),
    "inbound": LazyCommand(
        "feedpipe.cli.web", "inbound",
        "Process one message read on stdin (for an MTA pipe or alias): a bounce or DSN, a spam "
        "complaint (ARF), an auto-reply, or a `mailto:` unsubscribe; anything else is kept and "
        "listed by --list.",
    ),
}  # fmt: skip


class FeedpipeGroup(LazyGroup):
    """Turns feedpipe errors into one clear line and a non-zero exit status; Ctrl-C (and
    SIGTERM) into one line saying what was done."""

    in_own_process = False  # set by `main()`: signals are then this command's to handle

    def invoke(self, ctx: click.Context) -> Any:
        from feedpipe.parallel import Terminated

        try:
            if self.in_own_process:  # from here on Ctrl-C and SIGTERM are caught below
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, _terminated)
            result = super().invoke(ctx)
            if self.in_own_process:  # the command is over: a late signal changes nothing
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return result
        except (KeyboardInterrupt, Terminated) as exc:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while leaving
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            killed = isinstance(exc, Terminated)
            fail(
                Exit.TERMINATED if killed else Exit.INTERRUPTED,
                interrupted_line("terminated" if killed else "interrupted", ctx.obj),
            )
        except ConfigError as exc:
            fail(Exit.CONFIG, f"configuration error: {exc}")
        except StoreLockedError as exc:
            fail(Exit.LOCKED, str(exc))
        except FeedpipeError as exc:
            fail(Exit.PARTLY, f"error: {exc}")


def _terminated(_signum: int, _frame: object) -> None:
    from feedpipe.parallel import Terminated

    raise Terminated


def interrupted_line(what: str, state: CliState | None) -> str:
    """ "interrupted: 300 of 600 documents synced, nothing lost (...)" """
    done = state.progress.summary() if state is not None else None
    return (
        f"{what}: {done + ', ' if done else ''}nothing lost — what was committed stays (sync, "
        "imports and sends commit batch by batch); the next run does the rest"
    )


@click.group(cls=FeedpipeGroup, lazy=LAZY, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: (
        _version(ctx) if value and not ctx.resilient_parsing else None
    ),
    help="Show the version and the store migration it runs on, then exit.",
)
@click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar=CONFIG_ENV,
    help=f"Path to config.toml (or set {CONFIG_ENV}; default ./config.toml).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars or progress lines (standard error)."
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None, quiet: bool) -> None:
    """feedpipe: turn a folder of posts into feeds and digest emails."""
    ctx.obj = CliState(config, Progress(quiet))


def _version(ctx: click.Context) -> None:
    """`feedpipe --version` (looked up only when asked: importlib.metadata is slow to load)."""
    if ctx.resilient_parsing:  # shell completion
        return
    from feedpipe import __version__

    click.echo(f"feedpipe {__version__} (store schema: migration {schema_revision()})")
    ctx.exit()


def schema_revision() -> str:
    """The newest migration this version ships (`migrations/versions/NNNN_*.py`), read without
    importing the store and SQLAlchemy; equal to `store.engine.HEAD_REVISION` (tested)."""
    import os

    import feedpipe.migrations  # a folder on disk: Alembic reads its scripts as files too

    versions = os.path.join(os.path.dirname(feedpipe.migrations.__file__), "versions")
    return max(name[:4] for name in os.listdir(versions) if name[:4].isdigit())


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (click's), e.g. for bash:
    `feedpipe completion bash > ~/.local/share/bash-completion/completions/feedpipe`;
    zsh: `feedpipe completion zsh > "${fpath[1]}/_feedpipe"`;
    fish: `feedpipe completion fish > ~/.config/fish/completions/feedpipe.fish`."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    assert completer is not None  # the three choices are click's own
    click.echo(completer(cli, {}, "feedpipe", "_FEEDPIPE_COMPLETE").source())


def _echo_sync(report: SyncReport, verbose: bool) -> None:
    extra = "".join(
        f", {n} {what}"
        for n, what in (
            (len(report.drafts), "drafts" if len(report.drafts) != 1 else "draft"),
            (len(report.scheduled), "scheduled"),
            (report.merged, "merged duplicates" if report.merged != 1 else "merged duplicate"),
        )
        if n
    )
    click.echo(
        f"sync: {len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged, "
        f"{len(report.skipped)} skipped{extra} ({report.seconds:.2f} s)"
    )
    # Skip and warning reasons start with the file (and line or item) they concern.
    for skip in report.skipped:
        click.echo(f"  skipped: {skip.reason}", err=True)
    for dup in report.duplicates:
        click.echo(f"  duplicate {dup.key}: {dup.reason}", err=True)
    for warning in report.warnings if verbose else ():
        click.echo(f"  warning: {warning.reason}", err=True)
    if report.warnings and not verbose:
        click.echo(f"  {plural(len(report.warnings), 'warning')} (use -v to list them)", err=True)


def _echo_build(report: BuildReport) -> None:
    click.echo(
        f"build: {plural(report.feeds, 'feed')}; {plural(len(report.written), 'file')} written, "
        f"{report.unchanged} unchanged, {len(report.removed)} removed "
        f"({report.seconds:.2f} s)"
    )


SYNCING = ("sync", "document", "synced")


@cli.command()
@click.option("-v", "--verbose", is_flag=True, help="List every warning.")
@now_option
@pass_state
def sync(state: CliState, verbose: bool, now: str | None) -> None:
    """Ingest the source (posts folder, export or feed) into the store."""
    from feedpipe.worker.runs import cli_identity

    with state.long_work(now) as service, state.progress.meter(*SYNCING) as docs:
        started_at = service.clock.now()
        report = service.sync(docs.tick)
        service.record_runs(cli_identity("sync"), started_at, report, None)
    _echo_sync(report, verbose)


@cli.command()
@click.option("--no-sync", is_flag=True, help="Build from the store as it is.")
@click.option("--full", is_flag=True, help="Render every feed, not only the changed ones.")
@click.option("-v", "--verbose", is_flag=True, help="List every warning and written file.")
@now_option
@pass_state
def build(state: CliState, no_sync: bool, full: bool, verbose: bool, now: str | None) -> None:
    """Sync, then write the feeds that changed (RSS, Atom, JSON Feed, OPML)."""
    from feedpipe.worker.runs import cli_identity

    meters = state.progress
    with (
        state.long_work(now) as service,
        meters.meter(*SYNCING) as docs,
        meters.meter("build", "feed", "built") as feeds,
    ):
        started_at = service.clock.now()
        report = service.build(sync=not no_sync, full=full, sync_tick=docs.tick, tick=feeds.tick)
        service.record_runs(cli_identity("build"), started_at, report.sync, report)
    if report.sync:
        _echo_sync(report.sync, verbose)
    _echo_build(report)
    for path in report.written if verbose else ():
        click.echo(f"  wrote {path}")
    _publish(service, report)


def _publish(service: Feedpipe, report: BuildReport) -> None:
    """WebSub: tell every hub which feeds the build changed; record it like the worker does."""
    if not service.settings.websub_hubs:
        return
    urls = service.changed_feed_urls(report)
    if not urls:
        return
    from feedpipe.model import RunRecord
    from feedpipe.worker.runs import RunLog, cli_identity

    started_at = service.clock.now()
    done = service.publish(urls)
    error = done.error()
    run = RunRecord(
        "publish", cli_identity("build"), started_at, done.seconds, "error" if error else "ok",
        done.counts(), error,
    )  # fmt: skip
    RunLog(service).record(run)
    hubs = plural(len(done.outcomes), "hub")
    click.echo(f"websub: {plural(len(urls), 'changed feed URL')} published to {hubs}")
    if error:
        click.echo(f"feedpipe build: warning: {error}", err=True)


def main() -> None:
    FeedpipeGroup.in_own_process = True
    try:
        cli(prog_name="feedpipe")
    except SystemExit as exc:  # click always ends so; a pool stopped mid-work: leave now
        parallel = sys.modules.get("feedpipe.parallel")  # never loaded: no pool ever ran
        if parallel is not None:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            parallel.exit_if_abandoned(code)
        raise
