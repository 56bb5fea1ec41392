"""Bounce addresses (VERP): `bounces+<outbox id>-<MAC>@domain` names the message it was sent
for, so an asynchronous bounce needs no guessing; a forged or altered token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from feedpipe.errors import ValidationError

MAC_BYTES = 8  # 64 bits: 13 base32 characters
# The token is lower case only: some MTAs fold the local part's case.
_TOKEN = re.compile(r"^([0-9a-f]{1,16})-([a-z2-7]{13})$")


class ForgedTokenError(ValidationError):
    """A bounce address carries a token feedpipe did not make (or one that was altered)."""


@dataclass(frozen=True)
class Verp:
    """Makes and reads the envelope senders of one `[email] bounce_address`."""

    bounce_address: str  # bounces@blog.example.com
    secret: str | bytes = field(repr=False)

    def __post_init__(self) -> None:
        key = self.secret.encode() if isinstance(self.secret, str) else self.secret
        object.__setattr__(self, "_key", hashlib.sha256(b"feedpipe.verp\0" + key).digest())

    @property
    def local(self) -> str:
        return self.bounce_address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.bounce_address.rpartition("@")[2]

    def _mac(self, ident: str) -> str:
        key: bytes = getattr(self, "_key")  # noqa: B009 (set in __post_init__ of a frozen class)
        digest = hmac.new(key, ident.encode("ascii"), hashlib.sha256).digest()[:MAC_BYTES]
        return base64.b32encode(digest).decode("ascii").rstrip("=").lower()

    def token(self, outbox_id: int) -> str:
        ident = f"{outbox_id:x}"
        return f"{ident}-{self._mac(ident)}"

    def sender(self, outbox_id: int) -> str:
        """The envelope sender (MAIL FROM) of outbox message `outbox_id`."""
        return f"{self.local}+{self.token(outbox_id)}@{self.domain}"

    def read(self, address: str) -> int | None:
        """The outbox id a bounce address names; None when the address is not one of ours
        (another local part or domain, or no token); ForgedTokenError when the token is bad."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        base, plus, token = local.partition("+")
        if domain.lower() != self.domain.lower() or base.lower() != self.local.lower() or not plus:
            return None
        match = _TOKEN.match(token.lower())
        if match is None or not hmac.compare_digest(self._mac(match[1]), match[2]):
            raise ForgedTokenError(f"{address.strip()}: the bounce token is not one feedpipe made")
        return int(match[1], 16)

    def find(self, addresses: Iterable[str]) -> int | None:
        """The outbox id of the first of `addresses` that is one of our bounce addresses (a
        forged one raises ForgedTokenError)."""
        for address in addresses:
            found = self.read(address)
            if found is not None:
                return found
        return None
