"""WebSub records: a callback's subscription to a topic (our hub), a hub's last publish."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from feedpipe.clock import ensure_utc


@dataclass(frozen=True, slots=True)
class HubSubscription:
    """A verified subscription of `callback` to `topic` until `expires_at` (the lease)."""

    topic: str
    callback: str
    secret: str | None  # HMAC key of X-Hub-Signature; None: deliveries are not signed
    lease_seconds: int
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PublishState:
    """What feedpipe last told one hub, and the totals so far (`feedpipe status`)."""

    hub: str
    at: datetime  # when the last publish run to this hub ended
    result: str  # "ok" | "error"
    detail: str  # "3 URLs" or the error (status code, reason)
    ok: int = 0  # URLs the hub accepted, in all
    failed: int = 0  # URLs given up on after every retry, in all

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "at": self.at.isoformat()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PublishState:
        data: dict[str, Any] = json.loads(text)
        return cls(**{**data, "at": ensure_utc(datetime.fromisoformat(data["at"]))})
