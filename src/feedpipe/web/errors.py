"""Errors the web layer raises on purpose; app.py maps each to an HTTP status."""

from __future__ import annotations

from collections.abc import Sequence

from feedpipe.errors import FeedpipeError, ValidationError


class RateLimitedError(FeedpipeError):
    """Too many requests from one client or for one address; retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLargeError(FeedpipeError):
    """A request body is larger than the web layer accepts."""


class CsrfError(FeedpipeError):
    """A form was posted without the signed value its page carried."""


class UnknownCategoriesError(ValidationError):
    """Categories that the blog does not have; `known` lists the ones it has."""

    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        listed = ", ".join(known) if known else "none yet"
        super().__init__(f"unknown categories: {', '.join(unknown)} (known: {listed})")
        self.unknown = tuple(unknown)
        self.known = tuple(known)


class FieldError(ValidationError):
    """One input field is invalid; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DeliveryUnavailableError(FeedpipeError):
    """The outbox cannot take this kind of message (yet); the message says what is missing."""
