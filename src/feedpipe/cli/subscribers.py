"""Command line for subscribers (`feedpipe subscribers ...`) and digests (`digest plan|preview`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from feedpipe.cli.common import CliState, check_now, now_option, pass_state
from feedpipe.cli.textgrid import plural, table
from feedpipe.errors import ValidationError
from feedpipe.model.subscribers import Frequency, SubscriberStatus

if TYPE_CHECKING:  # the digests and emails load the store and Jinja2: only when a command runs
    from feedpipe.digests.model import Plan
    from feedpipe.model import Subscriber
    from feedpipe.subscriptions.fields import CategoryIndex
    from feedpipe.subscriptions.service import SubscriptionService

SAMPLE_SIZE = 3
F = TypeVar("F", bound=Callable[..., Any])
SCHEDULE_FIELDS = ("frequency", "weekday", "time", "timezone", "month_day", "min_posts", "max_wait")


def describe(sub: Subscriber, categories: CategoryIndex, instant_delay: int) -> str:
    chosen = categories.names(sub.categories) or "all"
    schedule = sub.schedule.describe(instant_delay)
    called = f"; greeted as {sub.given_name}" if sub.given_name else ""
    return f"{sub.email} ({sub.status}; {schedule}; categories: {chosen}{called})"


def schedule_options(func: F) -> F:
    """The schedule options `subscribers add` and `update` share (names as in the CSV)."""
    for option in reversed(
        [
            click.option(
                "--frequency",
                type=click.Choice([f.value for f in Frequency]),
                help="Default from [digest].",
            ),
            click.option("--weekday", metavar="mon", help="Day for weekly digests (mon..sun)."),
            click.option("--time", "time", metavar="HH:MM", help="Local send time."),
            click.option("--timezone", metavar="ZONE", help="IANA time zone, e.g. Europe/Berlin."),
            click.option("--month-day", metavar="1..28|last", help="Day for monthly digests."),
            click.option("--min-posts", metavar="N", help="Hold a digest until N posts are new."),
            click.option("--max-wait", metavar="7d|36h", help="...but never longer than this."),
        ]
    ):
        func = option(func)
    return func


@click.group()
def subscribers() -> None:
    """Manage digest subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="Their name (the To header).")
@click.option("--given-name", metavar="NAME", help='What the greeting calls them ("Hi NAME,").')
@click.option("--categories", metavar='"A,B"', help="Category names; default: everything.")
@schedule_options
@click.option("--confirmed", is_flag=True, help="Active at once (no confirmation email).")
@now_option
@pass_state
def add(
    state: CliState,
    /,
    email: str,
    name: str | None,
    given_name: str | None,
    categories: str | None,
    confirmed: bool,
    now: str | None,
    **schedule: str | None,
) -> None:
    """Subscribe EMAIL (pending unless --confirmed)."""
    fields = {
        "email": email,
        "name": name,
        "given_name": given_name,
        "categories": categories,
        **schedule,
        "status": "active" if confirmed else "pending",
    }
    with state.service(now) as service:
        sub = service.subscriptions.add(fields)
        delay = service.settings.digest.instant_delay
        click.echo(f"added {describe(sub, service.subscriptions.categories(), delay)}")


@subscribers.command("update")
@click.argument("email")
@click.option("--categories", metavar='"A,B"', help='Category names; "" = everything.')
@click.option("--given-name", metavar="NAME", help='What the greeting calls them; "" = none.')
@schedule_options
@pass_state
def update(
    state: CliState,
    /,
    email: str,
    categories: str | None,
    given_name: str | None,
    **schedule: str | None,
) -> None:
    """Change EMAIL's schedule, categories or given name (options not given stay as they
    are), validated as the preferences page validates them."""
    from feedpipe.subscriptions.fields import PreferencesInput

    chosen = None if categories is None else tuple(categories.split(","))
    named = {k: schedule[k] for k in SCHEDULE_FIELDS}
    prefs = PreferencesInput(categories=chosen, given_name=given_name, **named)
    with state.service() as service:
        sub = service.subscriptions.update(email, prefs)
        delay = service.settings.digest.instant_delay
        click.echo(f"updated {describe(sub, service.subscriptions.categories(), delay)}")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@now_option
@pass_state
def import_(state: CliState, file: Path, now: str | None) -> None:
    """Import subscribers from a CSV file with a header row.

    Columns: email,name,categories,frequency,weekday,time,timezone,status,month_day,min_posts,
    max_wait,given_name (only email is required; empty fields take the [digest] defaults;
    status defaults to pending; frequency is instant, daily, weekly or monthly; given_name is
    what the greeting calls them). Bad rows are reported with their line number and skipped;
    the rest are imported.
    """
    with (
        state.long_work(now) as service,
        file.open(encoding="utf-8-sig", newline="") as stream,
        state.progress.meter("import", "row", "imported") as rows,
    ):
        report = service.subscriptions.import_csv(stream, rows.tick)
    for error in report.errors:
        click.echo(f"  line {error.line}: {error.reason}", err=True)
    click.echo(
        f"imported {plural(report.added, 'subscriber')}; "
        f"{plural(len(report.errors), 'row')} skipped"
    )


@subscribers.command("list")
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]))
@click.option("--category", help="Only those who get this category (by choice or 'all').")
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]))
@pass_state
def list_(state: CliState, status: str | None, category: str | None, frequency: str | None) -> None:
    """List subscribers as a table."""
    with state.service() as service:
        subs = service.subscriptions
        found = subs.subscribers(
            SubscriberStatus(status) if status else None,
            category,
            Frequency(frequency) if frequency else None,
        )
        names = subs.categories()
        delay = service.settings.digest.instant_delay
    rows = [
        [
            str(s.id),
            s.email,
            s.name or "",
            s.status.value,
            s.schedule.describe(delay),
            names.names(s.categories) or "all",
        ]
        for s in found
    ]
    click.echo(table(["ID", "EMAIL", "NAME", "STATUS", "SCHEDULE", "CATEGORIES"], rows))
    click.echo(plural(len(rows), "subscriber"))


@subscribers.command("remove")
@click.argument("email")
@pass_state
def remove(state: CliState, email: str) -> None:
    """Delete a subscriber and everything stored about them."""
    with state.service() as service:
        sub = service.subscriptions.remove(email)
    click.echo(f"removed {sub.email}")


@subscribers.command("export")
@pass_state
def export(state: CliState) -> None:
    """Write every subscriber as CSV to standard output (re-importable)."""
    with state.service() as service:
        service.subscriptions.export_csv(sys.stdout)


@click.group()
def digest() -> None:
    """Plan digest emails."""


def plan_rows(subscriptions: SubscriptionService, plan: Plan) -> list[list[str]]:
    samples = [i for e in plan.editions for i in e.subscriber_ids[:SAMPLE_SIZE]]
    emails = subscriptions.emails(samples)
    rows = []
    for edition in plan.editions:
        sample = [emails.get(i, "?") for i in edition.subscriber_ids[:SAMPLE_SIZE]]
        more = len(edition.subscriber_ids) - len(sample)
        rows.append(
            [
                edition.key[:12],
                str(edition.content.post_count),
                str(len(edition.subscriber_ids)),
                ", ".join(sample) + (f" (+{more})" if more else ""),
            ]
        )
    return rows


@digest.command("plan")
@now_option
@pass_state
def plan_(state: CliState, now: str | None) -> None:
    """Show who would get which edition now (or at --now), without sending anything."""
    if now:
        check_now(now)
    with state.service(now) as service:
        plan = service.digests.plan()
        rows = plan_rows(service.subscriptions, plan)
    click.echo(f"plan at {plan.now:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(table(["EDITION", "POSTS", "SUBSCRIBERS", "SAMPLE"], rows))
    quiet = len(plan.watermarks) - plan.recipient_count
    click.echo(
        f"{len(plan.watermarks)} due: {plural(plan.recipient_count, 'email')} in "
        f"{plural(len(plan.editions), 'edition')}; {quiet} with nothing new"
    )


@digest.command("preview")
@click.option("--email", "address", metavar="ADDR", help="Preview for this subscriber.")
@click.option("--categories", metavar="A,B", help="Preview for these categories (no subscriber).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("preview"),
    show_default=True,
    help="Folder for the .html, .txt and .eml files.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the HTML in a browser.")
@now_option
@pass_state
def preview(
    state: CliState,
    address: str | None,
    categories: str | None,
    out: Path,
    open_browser: bool,
    now: str | None,
) -> None:
    """Write the next digest as .html, .txt and a complete .eml, without sending or changing
    anything.

    It holds the posts that are new to the subscriber the way real digests count them: posts
    published after they subscribed that feedpipe first saw (or that were published, if later)
    after their last digest or subscription, back catalogue left out. Without --email: a
    reader of --categories (default: every category) and the newest posts, whatever their
    age, up to [digest] max_posts."""
    import webbrowser

    from feedpipe.emails.preview import write_preview
    from feedpipe.emails.render import EmailRenderer

    if now:
        check_now(now)
    if address and categories:
        raise ValidationError("give --email or --categories, not both")
    with state.service(now) as service:
        content, recipient = service.digests.preview(address, categories)
        if content is None:
            since = (
                f"since {service.subscriptions.get(address).watermark:%Y-%m-%d %H:%M} UTC"
                " (their last digest or subscription)"
                if address
                else "on the site"
            )
            click.echo(
                f"nothing new for {recipient.email} {since}: no digest would be sent,"
                " nothing written"
            )
            return
        renderer = EmailRenderer(service.settings)
        paths = write_preview(renderer, content, recipient, out, service.clock.now())
    click.echo(f"{plural(content.post_count, 'post')} for {recipient.email}:")
    for path in paths:
        click.echo(f"  {path}")
    if open_browser:
        webbrowser.open(paths[0].resolve().as_uri())
