"""The subscription desk: subscribe, confirm, unsubscribe and preferences over DigestService."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from itsdangerous.encoding import base64_decode, bytes_to_int

from feedpipe.errors import DuplicateSubscriberError, ValidationError
from feedpipe.model import Frequency, Schedule, Subscriber
from feedpipe.model import SubscriberStatus as Status
from feedpipe.model.terms import clean_name, term_key
from feedpipe.service import Feedpipe
from feedpipe.subscriptions.fields import (
    CategoryIndex,
    normalise_email,
    parse_choice,
    parse_time,
    parse_timezone,
    parse_weekday,
)
from feedpipe.subscriptions.tokens import (
    InvalidTokenError,
    TokenPurpose,
    confirm_url,
    make_token,
    max_age,
    preferences_url,
    read_token,
    unsubscribe_url,
)
from feedpipe.web.errors import CsrfError, FieldError, RateLimitedError, UnknownCategoriesError
from feedpipe.web.mailer import Mailer
from feedpipe.web.ratelimit import Monotonic, Rate, RateLimiter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Limits:
    """Subscribe rate limits: requests per client IP and per address; confirmation emails."""

    per_ip: Rate = field(default_factory=lambda: Rate(10, 600.0))
    per_address: Rate = field(default_factory=lambda: Rate(5, 3600.0))
    # at most one confirmation email per address per 15 minutes
    confirmations: Rate = field(default_factory=lambda: Rate(1, 900.0))


@dataclass(frozen=True, slots=True)
class SubscribeInput:
    """What a subscribe form or JSON body carries (text as typed; validated by the desk)."""

    email: str
    name: str | None = None
    categories: tuple[str, ...] = ()
    frequency: str | None = None
    weekday: str | None = None
    time: str | None = None
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class PreferencesInput:
    """A preferences form: empty fields keep the current value; no categories means all."""

    categories: tuple[str, ...] = ()
    frequency: str | None = None
    weekday: str | None = None
    time: str | None = None
    timezone: str | None = None


@dataclass
class Desk:
    """Every subscriber action the web offers; routes only translate HTTP to these calls."""

    service: Feedpipe
    mailer: Mailer
    limits: Limits = field(default_factory=Limits)
    monotonic: Monotonic = time.monotonic
    _limiters: dict[str, RateLimiter] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._limiters = {
            name: RateLimiter(getattr(self.limits, name), self.monotonic)
            for name in ("per_ip", "per_address", "confirmations")
        }

    # -- categories ---------------------------------------------------------------------------

    def categories(self) -> CategoryIndex:
        return self.service.digests.categories()

    def known_categories(self) -> list[str]:
        index = self.categories()
        return sorted((t.name for t in index.by_key.values()), key=str.casefold)

    def check_categories(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """Cleaned names, each known; UnknownCategoriesError lists the known ones."""
        index = self.categories()
        cleaned = tuple(dict.fromkeys(n for n in (clean_name(x) for x in names) if n))
        unknown = [n for n in cleaned if term_key(n) not in index.by_key]
        if unknown:
            raise UnknownCategoriesError(unknown, self.known_categories())
        return cleaned

    # -- subscribe and confirm ----------------------------------------------------------------

    def subscribe(self, request: SubscribeInput, client: str) -> None:
        """Double opt-in. Behaves the same, seen from outside, for any state of the address."""
        self._limit("per_ip", client, "too many subscribe requests from your network")
        email = _email(request.email)
        names = self.check_categories(request.categories)
        self._limit("per_address", email.casefold(), "too many requests for this address")
        fields = {
            "email": email,
            "name": request.name,
            "categories": ",".join(names),
            "frequency": request.frequency,
            "weekday": request.weekday,
            "time": request.time,
            "timezone": request.timezone,
            "status": Status.PENDING.value,
        }
        try:
            sub = self.service.digests.subscribe(fields)
        except DuplicateSubscriberError:
            sub = self._existing(self.service.digests.get(email), fields)
        if sub.status is Status.PENDING:
            self._send_confirmation(sub)

    def _existing(self, sub: Subscriber, fields: dict[str, str | None]) -> Subscriber:
        """An address already known: only an unsubscribed one changes (back to pending)."""
        if sub.status is not Status.UNSUBSCRIBED:
            return sub
        store = self.service.store
        store.resubscribe(sub.id, self._now())
        prefs = PreferencesInput(
            tuple(n for n in (fields["categories"] or "").split(",") if n),
            fields["frequency"],
            fields["weekday"],
            fields["time"],
            fields["timezone"],
        )
        self._apply(sub, prefs)
        found = store.subscriber_by_id(sub.id)
        assert found is not None
        return found

    def _send_confirmation(self, sub: Subscriber) -> None:
        if self._limiters["confirmations"].hit(sub.email.casefold()) is not None:
            return  # one already went out recently: say nothing different
        token = make_token(self._secret(), TokenPurpose.CONFIRM, sub.id, self._now())
        self.mailer.queue_confirmation(sub, confirm_url(self._base(), token))

    def to_confirm(self, token: str) -> Subscriber:
        return self._subscriber(TokenPurpose.CONFIRM, token)

    def confirm(self, token: str) -> Subscriber:
        """Pending → active; other states stay as they are (an old link cannot resubscribe)."""
        sub = self.to_confirm(token)
        if sub.status is Status.PENDING:
            self.service.store.set_subscriber_status(sub.id, Status.ACTIVE, self._now())
        return self._reload(sub)

    # -- unsubscribe ----------------------------------------------------------------------------

    def to_unsubscribe(self, token: str) -> Subscriber:
        return self._subscriber(TokenPurpose.UNSUBSCRIBE, token)

    def unsubscribe(self, token: str) -> Subscriber:
        return self._unsubscribe(self.to_unsubscribe(token))

    def unsubscribe_address(self, email: str) -> Subscriber | None:
        """A `mailto:` unsubscribe: the sender's address, if it is a subscriber."""
        found = self.service.store.subscriber_by_email(email)
        return None if found is None else self._unsubscribe(found)

    def _unsubscribe(self, sub: Subscriber) -> Subscriber:
        if sub.status in (Status.ACTIVE, Status.PENDING, Status.PAUSED):
            self.service.store.set_subscriber_status(sub.id, Status.UNSUBSCRIBED, self._now())
        self.mailer.cancel_queued(sub.id)
        return self._reload(sub)

    # -- preferences ----------------------------------------------------------------------------

    def preferences(self, token: str) -> Subscriber:
        return self._subscriber(TokenPurpose.PREFERENCES, token)

    def save_preferences(self, token: str, csrf: str, prefs: PreferencesInput) -> Subscriber:
        sub = self._checked(token, csrf)
        self._apply(sub, prefs)
        return self._reload(sub)

    def pause(self, token: str, csrf: str) -> Subscriber:
        sub = self._checked(token, csrf)
        if sub.status is Status.ACTIVE:
            self.service.store.pause_subscriber(sub.id)
            self.mailer.cancel_queued(sub.id)
        return self._reload(sub)

    def resume(self, token: str, csrf: str) -> Subscriber:
        sub = self._checked(token, csrf)
        if sub.status is Status.PAUSED:
            self.service.store.resume_subscriber(sub.id, self._now())
        return self._reload(sub)

    def csrf(self, token: str) -> str:
        """The signed value a preferences form must post back (bound to its token)."""
        key = hashlib.sha256(b"feedpipe.csrf\0" + self._secret().encode()).digest()
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    def links(self, sub: Subscriber) -> dict[str, str]:
        """Fresh unsubscribe and preferences links for `sub`."""
        now, secret, base = self._now(), self._secret(), self._base()
        return {
            "unsubscribe": unsubscribe_url(
                base, make_token(secret, TokenPurpose.UNSUBSCRIBE, sub.id, now)
            ),
            "preferences": preferences_url(
                base, make_token(secret, TokenPurpose.PREFERENCES, sub.id, now)
            ),
        }

    def _checked(self, token: str, csrf: str) -> Subscriber:
        sub = self.preferences(token)
        if not hmac.compare_digest(self.csrf(token), csrf):
            raise CsrfError("this form has expired or did not come from this site; reload it")
        return sub

    def _apply(self, sub: Subscriber, prefs: PreferencesInput) -> None:
        names = self.check_categories(prefs.categories)
        keys = self.categories().resolve(",".join(names)) if names else ()
        schedule = Schedule(
            frequency=_field("frequency", lambda v: parse_choice(Frequency, v), prefs.frequency)
            or sub.frequency,
            weekday=_int_field("weekday", parse_weekday, prefs.weekday, sub.weekday),
            send_time=_field("time", parse_time, prefs.time) or sub.send_time,
            timezone=_field("timezone", parse_timezone, prefs.timezone) or sub.timezone,
        )
        self.service.store.set_subscriber_preferences(sub.id, schedule, keys)

    # -- helpers --------------------------------------------------------------------------------

    def _subscriber(self, purpose: TokenPurpose, token: str) -> Subscriber:
        """The subscriber a valid token names; never one created after the token was made."""
        secret, now = self._secret(), self._now()
        sub_id = read_token(secret, purpose, token, max_age(purpose), now)
        sub = self.service.store.subscriber_by_id(sub_id)
        if sub is None or _issued(token) < int(sub.created_at.timestamp()):
            raise InvalidTokenError("this link is not valid")
        return sub

    def _reload(self, sub: Subscriber) -> Subscriber:
        found = self.service.store.subscriber_by_id(sub.id)
        return sub if found is None else found

    def _limit(self, name: str, key: str, message: str) -> None:
        wait = self._limiters[name].hit(key)
        if wait is not None:
            raise RateLimitedError(message + "; try again later", wait)

    def _secret(self) -> str:
        return self.service.digests.secret()

    def _base(self) -> str:
        return self.service.settings.web.base_url

    def _now(self) -> datetime:
        return self.service.clock.now()


def _email(text: str) -> str:
    try:
        return normalise_email(text)
    except ValidationError as exc:
        raise FieldError("email", str(exc)) from None


def _field(name: str, parse: Callable[[str], T], text: str | None) -> T | None:
    if not (text and text.strip()):
        return None
    try:
        return parse(text)
    except ValidationError as exc:
        raise FieldError(name, str(exc)) from None


def _int_field(name: str, parse: Callable[[str], int], text: str | None, default: int) -> int:
    value = _field(name, parse, text)
    return default if value is None else value


def _issued(token: str) -> int:
    """The timestamp inside a token already verified by read_token."""
    parts = token.rsplit(".", 2)
    return bytes_to_int(base64_decode(parts[1])) if len(parts) == 3 else 0
