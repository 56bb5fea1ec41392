"""The web's guards around SubscriptionService: rate limits, the confirmation throttle, CSRF."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field

from feedpipe.model import Recipient, Subscriber
from feedpipe.subscriptions.fields import SubscribeInput, email_field
from feedpipe.subscriptions.mailer import SubscriberMailer
from feedpipe.subscriptions.service import SubscriptionService
from feedpipe.subscriptions.tokens import TokenPurpose
from feedpipe.web.errors import CsrfError, RateLimitedError
from feedpipe.web.ratelimit import Monotonic, Rate, RateLimiter


@dataclass(frozen=True, slots=True)
class Limits:
    """Subscribe rate limits: requests per client IP and per address; confirmation emails."""

    per_ip: Rate = field(default_factory=lambda: Rate(10, 600.0))
    per_address: Rate = field(default_factory=lambda: Rate(5, 3600.0))
    # at most one confirmation email per address per 15 minutes
    confirmations: Rate = field(default_factory=lambda: Rate(1, 900.0))


@dataclass
class ThrottledMailer:
    """A SubscriberMailer that drops a confirmation when one went to the address recently."""

    mailer: SubscriberMailer
    limiter: RateLimiter

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        if self.limiter.hit(subscriber.email.casefold()) is None:
            self.mailer.queue_confirmation(subscriber, confirm_url)
        # else: one already went out recently; say nothing different

    def cancel_queued(self, subscriber_id: int) -> int:
        return self.mailer.cancel_queued(subscriber_id)

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        if self.limiter.hit("links\0" + subscriber.email.casefold()) is None:
            self.mailer.queue_links(subscriber, links)


@dataclass
class Guard:
    """Per-process abuse limits of the public forms, and the preferences form's CSRF value."""

    subscriptions: SubscriptionService
    limits: Limits = field(default_factory=Limits)
    monotonic: Monotonic = time.monotonic
    _per_ip: RateLimiter = field(init=False, repr=False)
    _per_address: RateLimiter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._per_ip = RateLimiter(self.limits.per_ip, self.monotonic)
        self._per_address = RateLimiter(self.limits.per_address, self.monotonic)

    def subscribe(self, wanted: SubscribeInput, client: str) -> None:
        """Double opt-in from `client`, within the per-IP and (valid) per-address limits."""
        _limit(self._per_ip, client, "too many subscribe requests from your network")
        email = self.subscriptions.check_request(wanted)
        _limit(self._per_address, email.casefold(), "too many requests for this address")
        self.subscriptions.request(wanted)

    def send_links(self, email: str, client: str) -> None:
        """Mail a subscriber their own links (/unsubscribe), within the same limits."""
        _limit(self._per_ip, client, "too many requests from your network")
        address = email_field(email)
        _limit(self._per_address, address.casefold(), "too many requests for this address")
        self.subscriptions.send_links(address)

    def csrf(self, token: str) -> str:
        """The signed value a preferences form must post back (bound to its token)."""
        secret = self.subscriptions.links.secret()
        key = hashlib.sha256(b"feedpipe.csrf\0" + secret.encode()).digest()
        return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()

    def checked(self, token: str, csrf: str) -> Subscriber:
        """The subscriber of a preferences token whose form carried the right CSRF value."""
        sub = self.subscriptions.by_token(TokenPurpose.PREFERENCES, token)
        if not hmac.compare_digest(self.csrf(token), csrf):
            raise CsrfError("this form has expired or did not come from this site; reload it")
        return sub


def _limit(limiter: RateLimiter, key: str, message: str) -> None:
    wait = limiter.hit(key)
    if wait is not None:
        raise RateLimitedError(message + "; try again later", wait)
