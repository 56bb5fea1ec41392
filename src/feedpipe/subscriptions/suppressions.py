"""The one suppression list: who is never mailed again, why, from where; consulted by every
send (fill and claim) and every import; only a completed double opt-in lifts an entry."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from feedpipe.clock import Clock
from feedpipe.errors import NotFoundError, SuppressedError
from feedpipe.model import Action
from feedpipe.model.hygiene import Suppression, SuppressionReason
from feedpipe.store import Store
from feedpipe.subscriptions.fields import email_field

CSV_COLUMNS = ("email", "reason", "source", "created_at", "detail")
# What a suppression does to the address's subscriber, by the transition table.
ACTIONS = {
    SuppressionReason.BOUNCE: Action.BOUNCE,
    SuppressionReason.SOFT_BOUNCE: Action.BOUNCE,
    SuppressionReason.COMPLAINT: Action.COMPLAIN,
    SuppressionReason.MANUAL: Action.SUPPRESS,
}
# The actions that put the address on the list, and the reason they give.
STOPS_BY = {
    Action.BOUNCE: SuppressionReason.BOUNCE,
    Action.COMPLAIN: SuppressionReason.COMPLAINT,
    Action.SUPPRESS: SuppressionReason.MANUAL,
}


def refusal(entry: Suppression) -> str:
    """Why an address is not taken: its entry, and what lifts it."""
    return (
        f"{entry.email} is suppressed ({entry.reason} from {entry.source}, "
        f"{entry.created_at:%Y-%m-%d}): only a new subscription confirmed by the address "
        "itself lifts it"
    )


@dataclass
class Suppressions:
    """List, add, remove, export; `check` for imports and additions."""

    store: Store
    clock: Clock

    def list(self, reason: SuppressionReason | None = None) -> list[Suppression]:
        return self.store.suppressions(reason)

    def add(
        self,
        email: str,
        reason: SuppressionReason = SuppressionReason.MANUAL,
        source: str = "cli",
        detail: str = "",
    ) -> tuple[Suppression, bool]:
        """Suppress an address (validated); its subscriber stops by the table and their queue
        is cancelled. Returns the entry in force and whether it is new."""
        address = email_field(email)
        entry = Suppression(address, reason, source, self.clock.now(), detail)
        added = self.store.suppress(entry, ACTIONS[reason])
        found = self.store.suppressed([address])
        return next(iter(found.values()), entry), added

    def remove(self, email: str) -> Suppression:
        """Take an address off the list (its subscriber keeps a stopped status: they come back
        by subscribing again); NotFoundError when it is not listed."""
        found = self.store.suppressed([email])
        if not found or not self.store.unsuppress(email):
            raise NotFoundError(f"{email.strip()} is not suppressed")
        return next(iter(found.values()))

    def lift(self, email: str) -> bool:
        """A completed double opt-in: the address itself asked again and confirmed."""
        return self.store.unsuppress(email)

    def check(self, email: str) -> None:
        """SuppressedError when the address is on the list."""
        for entry in self.store.suppressed([email]).values():
            raise SuppressedError(refusal(entry))

    def among(self, emails: Sequence[str]) -> dict[str, Suppression]:
        """The entries of the suppressed ones among `emails`, by address key."""
        return self.store.suppressed(emails)

    def export_csv(self, stream: IO[str]) -> int:
        entries = self.list()
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for e in entries:
            writer.writerow([e.email, e.reason.value, e.source, e.created_at.isoformat(), e.detail])
        return len(entries)
