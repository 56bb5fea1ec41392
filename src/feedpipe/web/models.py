"""JSON bodies of the web API (pydantic): validated input and documented output."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, WithJsonSchema

from feedpipe.model import LAST_DAY, WEEKDAYS, Subscriber, SubscriberStatus
from feedpipe.model.subscribers import wait_text
from feedpipe.subscriptions.fields import MAX_NAME_CHARS


class SubscribeBody(BaseModel):
    """POST /api/subscribe."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, description="The address to subscribe.")
    name: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    given_name: str | None = Field(
        default=None,
        description=f'What the greeting calls them ("Hi …,"); at most {MAX_NAME_CHARS} characters.',
        json_schema_extra={"maxLength": MAX_NAME_CHARS},  # checked by the service (422)
    )
    categories: list[str] = Field(
        default_factory=list, max_length=100, description="Category names; empty = all posts."
    )
    frequency: Literal["instant", "daily", "weekly", "monthly"] | None = None
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    time: str | None = Field(default=None, max_length=5, description="Local time as HH:MM.")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone from the browser, e.g. Europe/Berlin."
    )
    month_day: str | None = Field(
        default=None, max_length=4, description="Monthly digests: day 1 to 28, or `last`."
    )
    min_posts: int | None = Field(
        default=None, ge=1, le=100, description="Hold a digest until this many posts are new."
    )
    max_wait: str | None = Field(
        default=None, max_length=8, description="...but at most this long: `7d`, `36h`."
    )
    pow_challenge: str | None = Field(
        default=None,
        max_length=200,
        description="With [web] subscribe_proof_of_work: from GET /api/subscribe/challenge.",
    )
    pow_nonce: str | None = Field(
        default=None,
        max_length=32,
        description="A nonce such that SHA-256(challenge:nonce) starts with `bits` zero bits.",
    )


class Challenge(BaseModel):
    """GET /api/subscribe/challenge: the proof of work a subscribe request must carry."""

    challenge: str = Field(description="Empty when no proof of work is asked.")
    bits: int = Field(description="Leading zero bits SHA-256(challenge:nonce) must have; 0: off.")


class Accepted(BaseModel):
    """The one answer to every accepted subscribe request (no enumeration)."""

    status: Literal["accepted"] = "accepted"
    message: str


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """Every error answer of the JSON API."""

    error: str
    fields: list[FieldProblem] = Field(default_factory=list)
    known: list[str] | None = None


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str | None
    given_name: str | None = Field(description="What the greeting calls them, if they said.")
    status: str
    paused: bool
    categories: list[str]
    frequency: str
    weekday: str
    time: str
    timezone: str
    month_day: str = Field(description="Monthly digests: day 1 to 28, or `last`.")
    min_posts: int
    max_wait: str
    schedule: str = Field(description='For people: "monthly on day 1 at 08:00 Europe/Berlin".')
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None

    @classmethod
    def of(cls, sub: Subscriber, instant_delay: int = 5) -> SubscriberOut:
        return cls(
            id=sub.id,
            email=sub.email,
            name=sub.name,
            given_name=sub.given_name,
            status=sub.status.value,
            paused=sub.status is SubscriberStatus.PAUSED,
            categories=list(sub.categories),
            frequency=sub.frequency.value,
            weekday=WEEKDAYS[sub.weekday],
            time=f"{sub.send_time:%H:%M}",
            timezone=sub.timezone,
            month_day="last" if sub.month_day == LAST_DAY else str(sub.month_day),
            min_posts=sub.min_posts,
            max_wait=wait_text(sub.max_wait),
            schedule=sub.schedule.describe(instant_delay),
            created_at=sub.created_at,
            confirmed_at=sub.confirmed_at,
            unsubscribed_at=sub.unsubscribed_at,
        )


def _number_as_text(value: object) -> object:
    """A JSON integer as the text a form field would carry (booleans are no numbers)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# An integer or a string, read as text (validated as the form's text is); errors name the field.
NumberText = Annotated[
    StrictStr,
    BeforeValidator(_number_as_text),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}]}),
]


class SubscriberPatch(BaseModel):
    """PATCH /api/admin/subscribers/{email}: what to change; absent fields stay as they are.

    Only JSON types are checked here: every value is validated by the function the
    preferences page and the CSV import use (a bad one is a 422 naming its field)."""

    model_config = ConfigDict(extra="forbid")

    frequency: StrictStr | None = Field(
        default=None, description="`instant`, `daily`, `weekly` or `monthly`."
    )
    weekday: StrictStr | None = Field(
        default=None, description="Weekly digests: `mon` … `sun` (or `monday`, `0` … `6`)."
    )
    time: StrictStr | None = Field(default=None, description="Local send time as HH:MM.")
    timezone: StrictStr | None = Field(default=None, description="IANA zone: `Europe/Berlin`.")
    month_day: NumberText | None = Field(
        default=None, description="Monthly digests: day 1 to 28, or `last`."
    )
    min_posts: NumberText | None = Field(
        default=None, description="Hold a digest until this many posts are new (1 to 100)."
    )
    max_wait: StrictStr | None = Field(
        default=None, description="...but at most this long: `7d`, `36h` (1 hour to 366 days)."
    )
    categories: list[StrictStr] | None = Field(
        default=None,
        max_length=100,
        description="Category names in the chosen order; `[]` = all posts; null: unchanged.",
    )
    given_name: StrictStr | None = Field(
        default=None,
        description=f'What the greeting calls them; null or `""` removes it. At most '
        f"{MAX_NAME_CHARS} characters.",
        json_schema_extra={"maxLength": MAX_NAME_CHARS},  # checked by the service (422)
    )


class SubscriberList(BaseModel):
    count: int
    subscribers: list[SubscriberOut]


class OutboxState(BaseModel):
    counts: dict[str, int]


class BuildResult(BaseModel):
    feeds: int
    written: int
    unchanged: int
    removed: int
    seconds: float


class SuppressionOut(BaseModel):
    email: str
    reason: Literal["bounce", "soft-bounce", "complaint", "manual"]
    source: str
    created_at: datetime
    detail: str


class SuppressionList(BaseModel):
    count: int
    suppressions: list[SuppressionOut]


class SuppressBody(BaseModel):
    """POST /api/admin/suppressions."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320, description="The address never to mail again.")
    reason: Literal["bounce", "soft-bounce", "complaint", "manual"] = "manual"
    detail: str = Field(default="", max_length=1000)


class Suppressed(BaseModel):
    """The entry in force for the address, and whether this request added it."""

    added: bool
    suppression: SuppressionOut


class RatesOut(BaseModel):
    sent: int
    bounces: int
    complaints: int
    bounce_rate: float
    complaint_rate: float


class EditionRates(RatesOut):
    edition: str


class Deliverability(BaseModel):
    """Bounce and complaint rates (what Gmail and Yahoo watch) and the inbound mail."""

    windows: dict[str, RatesOut]
    editions: list[EditionRates]
    complaint_rate_limit: float
    inbound: dict[str, int]
