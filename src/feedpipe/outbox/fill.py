"""The fill step: plan what is due, render each new edition once, write every row before sending."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from feedpipe.model import (
    Advance,
    FillReport,
    NewEdition,
    NewMessage,
    OutboxFill,
    Outcome,
    Recipient,
    email_key,
)
from feedpipe.outbox.policy import message_id

if TYPE_CHECKING:  # the renderer (Jinja2) is built only when a fill plans
    from feedpipe.digests.model import Plan, PlannedEdition
    from feedpipe.digests.service import DigestService
    from feedpipe.emails.render import EmailRenderer


def new_edition(renderer: EmailRenderer, edition: PlannedEdition, now: datetime) -> NewEdition:
    """Render an edition once into the row that stores it."""
    rendered = renderer.render_edition(edition.content)
    post_ids = tuple(p.id for s in edition.content.sections for p in s.posts)
    return NewEdition(edition.key, rendered.subject, post_ids, rendered.template.dump(), now)


def new_messages(
    edition_key: str,
    recipients: Sequence[Recipient],
    from_address: str,
    advances: Mapping[int, Advance] | None = None,
) -> list[NewMessage]:
    """One row per recipient; with the plan's `advances`, each carries the watermark it rolls
    back to and the deadline after which it is merged into the next digest instead."""
    out = []
    for r in recipients:
        advance = advances.get(r.subscriber_id) if advances else None
        mid = message_id(edition_key, r.subscriber_id, from_address)
        if advance is None:
            out.append(NewMessage(edition_key, r, mid))
        else:
            out.append(
                NewMessage(edition_key, r, mid, since=advance.since, deadline=advance.deadline)
            )
    return out


def outbox_fill(
    digests: DigestService,
    renderer: Callable[[], EmailRenderer],
    now: datetime,
    stored_keys: Callable[[Sequence[str]], set[str]],
) -> OutboxFill:
    """The rows for every digest due at `now`; editions already stored are not rendered again
    (an edition's key includes the renderer's fingerprint: after a template or setting change
    the same posts make a new edition; messages already queued keep theirs)."""
    plan: Plan = digests.plan(now, renderer().fingerprint())
    recipients = _unsuppressed(digests, digests.recipients(plan))
    stored = stored_keys([e.key for e in plan.editions])
    sender = digests.settings.email.from_address
    fresh = [e for e in plan.editions if e.key not in stored]
    editions = tuple(new_edition(renderer(), e, now) for e in fresh) if fresh else ()
    messages = tuple(
        m
        for e in plan.editions
        for m in new_messages(e.key, recipients.get(e.key, ()), sender, plan.advances)
    )
    return OutboxFill(plan.now, editions, messages, plan.advances)


def _unsuppressed(
    digests: DigestService, recipients: dict[str, tuple[Recipient, ...]]
) -> dict[str, tuple[Recipient, ...]]:
    """The recipients whose address is not on the suppression list (checked before every send)."""
    listed = digests.subscriptions.suppressions.among(
        [r.email for rs in recipients.values() for r in rs]
    )
    if not listed:
        return recipients
    return {
        k: tuple(r for r in rs if email_key(r.email) not in listed) for k, rs in recipients.items()
    }


def fill(
    digests: DigestService, renderer: Callable[[], EmailRenderer], now: datetime
) -> FillReport:
    """Plan, render and write one transaction (under the fill lock) that also moves watermarks.

    A crash before the commit leaves the watermarks where they were (planned again next time);
    after it, every message is in the outbox. Never planned twice: a concurrent fill waits.
    """
    store = digests.store
    digests.secret()  # may write the token key: before the fill takes the write lock

    def make() -> OutboxFill:
        return outbox_fill(digests, renderer, now, store.stored_edition_keys)

    expired = store.expire_outbox(now)  # late digests first: their posts are new again
    written, editions, queued = store.fill_outbox(make)
    outcomes = Counter(a.outcome for a in written.advances.values())
    return FillReport(
        due=outcomes[Outcome.SENT] + outcomes[Outcome.EMPTY],
        editions=editions,
        queued=queued,
        held=outcomes[Outcome.HELD],
        late=outcomes[Outcome.LATE],
        expired=expired,
    )
