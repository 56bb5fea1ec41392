"""`feedpipe simulate`: every digest the real planner would send over a period, with local
and UTC times and an estimated size, reading the store and writing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from feedpipe.digests.simulate import simulate
from feedpipe.errors import ValidationError
from feedpipe.model import SubscriberStatus

if TYPE_CHECKING:
    from feedpipe.digests.service import DigestService
    from feedpipe.emails.render import EmailRenderer


@dataclass(frozen=True, slots=True)
class SimulatedSend:
    """One message the worker would send."""

    at: datetime  # UTC: the plan that queues it
    email: str
    timezone: str
    schedule: str  # as people read it: "daily at 08:00 Europe/Berlin"
    edition: str  # edition key (the real one: the renderer's fingerprint is part of it)
    posts: tuple[str, ...]  # slugs, in the order the digest lists them
    more: int  # posts summarised as "and N more"
    size: int  # estimated bytes of the message

    @property
    def local(self) -> datetime:
        return self.at.astimezone(ZoneInfo(self.timezone))

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "local": self.local.isoformat(),
            "subscriber": self.email,
            "timezone": self.timezone,
            "schedule": self.schedule,
            "edition": self.edition,
            "posts": list(self.posts),
            "more": self.more,
            "bytes": self.size,
        }


def simulate_sends(
    digests: DigestService,
    renderer: EmailRenderer,
    start: datetime,
    end: datetime,
    email: str | None = None,
) -> Iterator[SimulatedSend]:
    """What a worker planning every `[worker] plan_seconds` from `start` to `end` would send
    (to `email` only, if given); each edition is rendered once for its size, nothing stored."""
    if end <= start:
        raise ValidationError("--to must be after --from")
    store, settings = digests.store, digests.settings
    if email is None:
        subs = store.subscribers(SubscriberStatus.ACTIVE)
    else:
        subs = [digests.subscriptions.get(email)]
    if not subs:
        return
    posts = store.digest_posts(min(s.watermark for s in subs), end)
    by_id = {s.id: s for s in subs}
    step = timedelta(seconds=settings.worker.plan_seconds)
    sizes: dict[str, int] = {}
    rules = digests.rules
    plans = simulate(
        subs, posts, start, end, step, store.posts_by_ids, rules, renderer.fingerprint()
    )
    for plan in plans:
        for edition in plan.editions:
            content = edition.content
            if edition.key not in sizes:
                sizes[edition.key] = len(renderer.render_edition(content).mime)
            slugs = tuple(p.slug for s in content.sections for p in s.posts)
            for sub_id in edition.subscriber_ids:
                sub = by_id[sub_id]
                yield SimulatedSend(
                    plan.now, sub.email, sub.timezone, digests.describe(sub), edition.key,
                    slugs, content.more, sizes[edition.key],
                )  # fmt: skip
