"""The one exception tree of feedpipe, rooted at FeedpipeError."""

from __future__ import annotations


class FeedpipeError(Exception):
    """Base of every error feedpipe raises on purpose."""


class ConfigError(FeedpipeError):
    """The configuration file or environment is invalid; the message names the key."""


class SourceError(FeedpipeError):
    """A source (folder, export or feed file) cannot be read at all."""


class PostError(FeedpipeError):
    """One post document is invalid; it is skipped and the run goes on."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


class StoreError(FeedpipeError):
    """The store (database) failed or is in an unexpected state."""


class StoreLockedError(StoreError):
    """Another process held the store's lock past [store] busy_timeout_seconds; nothing written."""

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"the store is locked by another process ({seconds:g} s); nothing was lost; run again"
        )
        self.seconds = seconds


class FeedWriteError(FeedpipeError):
    """A feed file could not be written under the output directory."""


class NotFoundError(FeedpipeError):
    """A requested record does not exist."""


class ValidationError(FeedpipeError):
    """User input (CLI argument, CSV row, HTTP field) is invalid; the message says which."""


class DuplicateSubscriberError(ValidationError):
    """An address is already subscribed (compared case-insensitively)."""


class InvalidTransitionError(ValidationError):
    """A subscriber status change the transition table does not allow (e.g. resume a pending)."""


class OutboxError(FeedpipeError):
    """The outbox cannot do what was asked (e.g. no transport for the settings)."""
