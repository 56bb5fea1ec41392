"""Errors the web layer raises on purpose; app.py maps each to an HTTP status."""

from __future__ import annotations

from feedpipe.errors import FeedpipeError


class RateLimitedError(FeedpipeError):
    """Too many requests from one client or for one address; retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CsrfError(FeedpipeError):
    """A form was posted without the signed value its page carried."""


class IntakeFullError(FeedpipeError):
    """Too many accepted requests wait for their work (503); retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
