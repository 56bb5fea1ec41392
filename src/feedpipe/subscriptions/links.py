"""SubscriptionLinks: the one place that mints and reads unsubscribe, preferences, confirm links."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from itsdangerous.encoding import base64_decode, bytes_to_int

from feedpipe.clock import Clock
from feedpipe.model import Contact, Recipient, Subscriber
from feedpipe.settings import Settings
from feedpipe.store import MetaStore
from feedpipe.subscriptions.tokens import (
    InvalidTokenError,
    TokenMaker,
    TokenPurpose,
    confirm_url,
    max_age,
    preferences_url,
    read_token,
    token_secret,
    unsubscribe_url,
)

_URLS = {
    TokenPurpose.UNSUBSCRIBE: unsubscribe_url,
    TokenPurpose.PREFERENCES: preferences_url,
    TokenPurpose.CONFIRM: confirm_url,
}


@dataclass(frozen=True, slots=True)
class ReadToken:
    """What a verified token says: the subscriber it names and when it was made."""

    subscriber_id: int
    issued: int  # epoch seconds


@dataclass
class SubscriptionLinks:
    """Signed links under [web] base_url, stamped by the injected clock; the key is read once."""

    settings: Settings
    store: MetaStore
    clock: Clock
    _secret: str | None = field(default=None, init=False, repr=False)

    def secret(self) -> str:
        """The token key: $FEEDPIPE_SECRET_KEY, else one generated once and kept in the store."""
        if self._secret is None:
            self._secret = token_secret(self.settings, self.store)
        return self._secret

    def url(self, purpose: TokenPurpose, subscriber_id: int) -> str:
        """A fresh link for `purpose` naming `subscriber_id`."""
        return self._url(TokenMaker(self.secret(), self.clock.now()), purpose, subscriber_id)

    def confirm(self, subscriber_id: int) -> str:
        return self.url(TokenPurpose.CONFIRM, subscriber_id)

    def unsubscribe(self, subscriber_id: int) -> str:
        return self.url(TokenPurpose.UNSUBSCRIBE, subscriber_id)

    def preferences(self, subscriber_id: int) -> str:
        return self.url(TokenPurpose.PREFERENCES, subscriber_id)

    def recipient(self, sub: Subscriber) -> Recipient:
        """One subscriber with fresh unsubscribe and preference links."""
        return self.recipients({sub.id: Contact(sub.email, sub.name, sub.given_name)})[sub.id]

    def recipients(self, contacts: Mapping[int, Contact]) -> dict[int, Recipient]:
        """Recipients (by id) for contacts (email, names); one signer for all of them (a fill
        makes a million: the link prefixes are made once, both tokens in one call)."""
        make = TokenMaker(self.secret(), self.clock.now()).make_each
        base = self.settings.web.base_url
        unsubscribe, preferences = unsubscribe_url(base, ""), preferences_url(base, "")
        purposes = (TokenPurpose.UNSUBSCRIBE, TokenPurpose.PREFERENCES)
        out = {}
        for i, contact in contacts.items():
            u, p = make(purposes, i)
            out[i] = Recipient(
                i, contact.email, contact.name, unsubscribe + u, preferences + p,
                given_name=contact.given_name,
            )  # fmt: skip
        return out

    def read(self, purpose: TokenPurpose, token: str) -> ReadToken:
        """The subscriber a token names; InvalidTokenError when forged, altered or expired."""
        now = self.clock.now()
        sub_id = read_token(self.secret(), purpose, token, max_age(purpose), now)
        return ReadToken(sub_id, _issued(token))

    def _url(self, maker: TokenMaker, purpose: TokenPurpose, subscriber_id: int) -> str:
        return _URLS[purpose](self.settings.web.base_url, maker.make(purpose, subscriber_id))


def _issued(token: str) -> int:
    """The timestamp inside a token already verified by read_token."""
    parts = token.rsplit(".", 2)
    if len(parts) != 3:
        raise InvalidTokenError("this link is not valid")
    return bytes_to_int(base64_decode(parts[1]))
