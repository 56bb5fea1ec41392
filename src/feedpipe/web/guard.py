"""The web's guards around SubscriptionService: rate limits, the confirmation throttle and
budgets, the honeypot, the proof of work, CSRF."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feedpipe.clock import Clock
from feedpipe.model import MessageKind, Recipient, Subscriber
from feedpipe.model.intake import IntakeKind, IntakeRequest
from feedpipe.store import IntakeStore, OutboxStore
from feedpipe.subscriptions.fields import SubscribeInput, email_field
from feedpipe.subscriptions.mailer import SubscriberMailer
from feedpipe.subscriptions.service import SubscriptionService
from feedpipe.subscriptions.tokens import TokenPurpose
from feedpipe.web import hashcash
from feedpipe.web.errors import CsrfError, IntakeFullError, RateLimitedError
from feedpipe.web.intake import RETRY_AFTER, IntakeConfig, SubscribeIntake
from feedpipe.web.ratelimit import Monotonic, Rate, RateLimiter

LOG = logging.getLogger("feedpipe.web")
HONEYPOT = "website"  # the form field people never see and bots fill in


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
class BudgetedMailer:
    """A SubscriberMailer that drops a confirmation past `[web] confirmations_per_hour` (the
    whole site) or `confirmations_per_domain_per_hour` (the recipient's domain): both counted in
    the store's outbox, so they hold across processes and restarts."""

    mailer: SubscriberMailer
    store: OutboxStore
    clock: Clock
    per_hour: int
    per_domain: int
    dropped: int = 0
    _warned_at: float = field(default=-1e9, init=False, repr=False)

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        domain = subscriber.email.rpartition("@")[2]
        since = self.clock.now() - timedelta(hours=1)
        total, same = self.store.confirmations_since(since, domain)
        if total >= self.per_hour or same >= self.per_domain:
            self._dropped(total >= self.per_hour, domain)
            return
        self.mailer.queue_confirmation(subscriber, confirm_url)

    def _dropped(self, site: bool, domain: str) -> None:
        """Log a spent budget at most once a minute (a flood must not flood the log)."""
        self.dropped += 1
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            which = "the site's" if site else f"{domain}'s"
            LOG.warning(
                "confirmation emails not queued: %s hourly budget is spent (%d dropped so far)",
                which,
                self.dropped,
            )

    def cancel_queued(self, subscriber_id: int) -> int:
        return self.mailer.cancel_queued(subscriber_id)

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        self.mailer.queue_links(subscriber, links)


@dataclass
class ReplayMailer:
    """The mailer of a replayed request (its process died while doing it): an email of a kind
    already queued to the subscriber since the request was accepted is not queued again (the
    first run queued it before dying; or a later request did, and the throttle would drop it)."""

    mailer: SubscriberMailer
    store: IntakeStore
    since: datetime

    def queue_confirmation(self, subscriber: Subscriber, confirm_url: str) -> None:
        if not self.store.queued_since(subscriber.id, MessageKind.CONFIRM, self.since):
            self.mailer.queue_confirmation(subscriber, confirm_url)

    def cancel_queued(self, subscriber_id: int) -> int:
        return self.mailer.cancel_queued(subscriber_id)

    def queue_links(self, subscriber: Subscriber, links: Recipient) -> None:
        if not self.store.queued_since(subscriber.id, MessageKind.LINKS, self.since):
            self.mailer.queue_links(subscriber, links)


def subscribe_payload(wanted: SubscribeInput) -> str:
    """A subscribe request as stored in the intake (JSON of its fields)."""
    return json.dumps(dataclasses.asdict(wanted), sort_keys=True)


def subscribe_input(payload: str) -> SubscribeInput:
    """The request `subscribe_payload` stored."""
    fields = json.loads(payload)
    return SubscribeInput(**{**fields, "categories": tuple(fields.get("categories", ()))})


@dataclass(frozen=True, slots=True)
class Proof:
    """A subscribe request's proof of work: the challenge it was given, the nonce it found."""

    challenge: str = ""
    nonce: str = ""


@dataclass
class Guard:
    """Per-process abuse limits of the public forms, and the preferences form's CSRF value.

    `subscribe` does the same work for every address (validate, limit, store the request) and
    leaves the lookups, writes and the confirmation email to `intake`'s thread: no enumeration.
    """

    subscriptions: SubscriptionService
    limits: Limits = field(default_factory=Limits)
    monotonic: Monotonic = time.monotonic
    pow_bits: int = 0  # [web] subscribe_proof_of_work; 0: off
    intake_config: IntakeConfig = field(default_factory=IntakeConfig)
    intake: SubscribeIntake = field(init=False)
    _per_ip: RateLimiter = field(init=False, repr=False)
    _per_address: RateLimiter = field(init=False, repr=False)
    _used_proofs: RateLimiter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._per_ip = RateLimiter(self.limits.per_ip, self.monotonic)
        self._per_address = RateLimiter(self.limits.per_address, self.monotonic)
        self._used_proofs = RateLimiter(Rate(1, hashcash.MAX_AGE_SECONDS), self.monotonic)
        subs = self.subscriptions
        self.intake = SubscribeIntake(subs.store, subs.clock, self.work, self.intake_config)

    def subscribe(
        self, wanted: SubscribeInput, client: str, trap: str = "", proof: Proof | None = None
    ) -> None:
        """Double opt-in from `client`, within the per-IP and (valid) per-address limits, with
        a solved proof of work when one is asked; a filled honeypot (`trap`) gets the same
        answer and nothing is queued."""
        _limit(self._per_ip, client, "too many subscribe requests from your network")
        email = self.subscriptions.check_request(wanted)
        _limit(self._per_address, email.casefold(), "too many requests for this address")
        if self.pow_bits:
            self._check_proof(proof or Proof())
        if trap:
            return
        self._store(IntakeKind.SUBSCRIBE, subscribe_payload(wanted))

    def work(self, request: IntakeRequest) -> None:
        """The work of a stored request (the intake's thread, after the reply)."""
        subs = self.subscriptions
        if request.replayed:
            subs = subs.with_mailer(ReplayMailer(subs.mailer, subs.store, request.accepted_at))
        if request.kind is IntakeKind.SUBSCRIBE:
            subs.request(subscribe_input(request.payload))
        else:
            subs.send_links(json.loads(request.payload)["email"])

    def _store(self, kind: IntakeKind, payload: str) -> None:
        if not self.intake.submit(kind, payload):
            raise IntakeFullError(
                "too many requests are waiting; try again in a minute", RETRY_AFTER
            )

    def challenge(self) -> str:
        """A fresh proof-of-work challenge for a subscribe form ("" when none is asked)."""
        if not self.pow_bits:
            return ""
        return hashcash.challenge(self._pow_key(), self.pow_bits, self._now())

    def _check_proof(self, proof: Proof) -> None:
        hashcash.verify(self._pow_key(), self.pow_bits, proof.challenge, proof.nonce, self._now())
        if self._used_proofs.hit(proof.challenge) is not None:
            raise hashcash.ProofOfWorkError("the form's check was used already: reload the page")

    def _now(self) -> int:
        return int(self.subscriptions.clock.now().timestamp())

    def _pow_key(self) -> bytes:
        secret = self.subscriptions.links.secret()
        return hashlib.sha256(b"feedpipe.pow\0" + secret.encode()).digest()

    def send_links(self, email: str, client: str) -> None:
        """Mail a subscriber their own links (/unsubscribe), within the same limits."""
        _limit(self._per_ip, client, "too many requests from your network")
        address = email_field(email)
        _limit(self._per_address, address.casefold(), "too many requests for this address")
        # after the reply, like subscribe: whether the address is a subscriber takes no time
        self._store(IntakeKind.LINKS, json.dumps({"email": address}))

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
