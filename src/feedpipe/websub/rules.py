"""The hub's pure decisions: what a request asks, whose topic and callback are acceptable, the
lease granted, the verification URL, and what a delivery carries (headers, signature)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from feedpipe.errors import ValidationError
from feedpipe.feeds.formats import FILE_NAMES, MEDIA_TYPES

Mode = Literal["subscribe", "unsubscribe", "publish"]
MAX_URL = 2000  # characters of a topic or callback URL
MAX_SECRET = 199  # bytes (W3C WebSub §5.1: hub.secret MUST be less than 200 bytes)
_MEDIA_BY_NAME = {name: MEDIA_TYPES[fmt] + "; charset=utf-8" for fmt, name in FILE_NAMES.items()}


@dataclass(frozen=True, slots=True)
class HubRequest:
    """One request to the hub, checked (W3C WebSub §5.1; publish: the common convention)."""

    mode: Mode
    topic: str
    callback: str = ""  # subscribe and unsubscribe only
    lease_seconds: int | None = None  # what the subscriber asked for
    secret: str | None = None


def _url(form: Mapping[str, str], key: str) -> str:
    value = form.get(key, "").strip()
    if not value:
        raise ValidationError(f"{key} is required")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(f"{key} must be an absolute http(s) URL, not {value[:100]!r}")
    if len(value) > MAX_URL or parts.fragment:
        raise ValidationError(f"{key} must be under {MAX_URL} characters, without a #fragment")
    return value


def parse_request(form: Mapping[str, str]) -> HubRequest:
    """The request a form asks for; ValidationError names the field that is wrong."""
    mode = form.get("hub.mode", "")
    if mode == "publish":
        key = "hub.url" if "hub.url" in form else "hub.topic"
        return HubRequest("publish", _url(form, key))
    if mode not in ("subscribe", "unsubscribe"):
        raise ValidationError(
            f"hub.mode must be subscribe, unsubscribe or publish, not {mode[:40]!r}"
        )
    topic, callback = _url(form, "hub.topic"), _url(form, "hub.callback")
    lease_text = form.get("hub.lease_seconds", "").strip()
    if lease_text and not (lease_text.isdigit() and int(lease_text) > 0):
        raise ValidationError("hub.lease_seconds must be a positive whole number of seconds")
    secret = form.get("hub.secret") or None
    if secret is not None and len(secret.encode()) > MAX_SECRET:
        raise ValidationError(f"hub.secret must be under 200 bytes, not {len(secret.encode())}")
    lease = int(lease_text) if lease_text else None
    if mode == "unsubscribe":
        return HubRequest("unsubscribe", topic, callback, lease)
    return HubRequest("subscribe", topic, callback, lease, secret)


def topic_path(topic: str, feeds_base_url: str) -> str | None:
    """The file under output_dir that `topic` names, if it is one of our subscription
    documents (the site's, a category's or a tag's feed in any format); else None."""
    base = feeds_base_url.rstrip("/") + "/"
    parts = urlsplit(topic)
    if not topic.startswith(base) or parts.query:
        return None
    path = topic[len(base) :]
    segments = path.split("/")
    if any(s in ("", ".", "..") or s.startswith(".") or "\\" in s for s in segments):
        return None
    folder_ok = len(segments) == 1 or (len(segments) == 3 and segments[0] in ("category", "tag"))
    return path if folder_ok and segments[-1] in _MEDIA_BY_NAME else None


def media_type(path: str) -> str:
    """Content-Type of a topic's file (topic_path's result)."""
    return _MEDIA_BY_NAME[path.rpartition("/")[2]]


def callback_refusal(addresses: Iterable[str]) -> str | None:
    """Why a callback resolving to `addresses` is refused (private, loopback, link-local …),
    or None when every address is public."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        for kind, flag in (
            ("an unspecified", address.is_unspecified),
            ("a loopback", address.is_loopback),
            ("a link-local", address.is_link_local),
            ("a private", address.is_private),
            ("a multicast", address.is_multicast),
            ("a reserved", address.is_reserved),
        ):
            if flag:
                return f"hub.callback resolves to {kind} address ({address}): refused"
    return None


def grant_lease(requested: int | None, default: int, most: int) -> int:
    """The lease the hub grants: the default when none is asked, at most `most`, at least 60 s."""
    return max(60, min(requested or default, most))


def verification_url(callback: str, request: HubRequest, challenge: str, lease: int) -> str:
    """The callback URL with the intent-verification query (W3C WebSub §5.3), its own kept."""
    parts = urlsplit(callback)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [("hub.mode", request.mode), ("hub.topic", request.topic)]
    query.append(("hub.challenge", challenge))
    if request.mode == "subscribe":
        query.append(("hub.lease_seconds", str(lease)))
    return urlunsplit(parts._replace(query=urlencode(query)))


def signature(secret: str, body: bytes) -> str:
    """X-Hub-Signature value: `sha256=` and the HMAC-SHA256 of the body, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery_headers(
    content_type: str, hub: str, topic: str, secret: str | None, body: bytes
) -> dict[str, str]:
    """Headers of a content distribution (W3C WebSub §7): the type, Link rel=hub and
    rel=self, and the signature when the subscriber gave a secret."""
    headers = {"Content-Type": content_type, "Link": f'<{hub}>; rel="hub", <{topic}>; rel="self"'}
    if secret is not None:
        headers["X-Hub-Signature"] = signature(secret, body)
    return headers
