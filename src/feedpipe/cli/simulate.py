"""`feedpipe simulate`: who would get which digest, when, over a period; nothing is sent."""

from __future__ import annotations

import json

import click

from feedpipe.cli.common import CliState, check_now, pass_state
from feedpipe.cli.textgrid import plural, table


@click.command("simulate")
@click.option("--from", "start", required=True, metavar="ISO8601", help="Start (UTC if naive).")
@click.option("--to", "end", required=True, metavar="ISO8601", help="End (UTC if naive).")
@click.option("--subscriber", metavar="EMAIL", help="Only this subscriber's digests.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per send, in a list.")
@pass_state
def simulate(state: CliState, start: str, end: str, subscriber: str | None, as_json: bool) -> None:
    """Run the real planner from --from to --to on a simulated clock (a worker planning every
    [worker] plan_seconds), posts scheduled for later included, and print every send: UTC and
    local time, subscriber, schedule, posts and estimated size. Sends and writes nothing."""
    begin, finish = check_now(start), check_now(end)
    with (
        state.service(start) as service,
        state.progress.meter("simulate", "hour", "simulated") as hours,
    ):
        sends = service.outbox.simulate(begin, finish, subscriber, hours.tick)
    if as_json:
        click.echo(json.dumps([s.to_json() for s in sends], indent=2))
        return
    rows = [
        [
            f"{s.at:%Y-%m-%d %H:%M} UTC",
            f"{s.local:%Y-%m-%d %H:%M %Z}",
            s.email,
            s.schedule,
            plural(len(s.posts), "post") + (f" +{s.more} more" if s.more else ""),
            f"{s.size / 1000:.1f} kB",
        ]
        for s in sends
    ]
    click.echo(table(["UTC", "LOCAL", "SUBSCRIBER", "SCHEDULE", "POSTS", "SIZE"], rows))
    people = len({s.email for s in sends})
    click.echo(
        f"{plural(len(sends), 'digest')} to {plural(people, 'subscriber')} from "
        f"{begin:%Y-%m-%d %H:%M} to {finish:%Y-%m-%d %H:%M} UTC; nothing sent, nothing written"
    )
