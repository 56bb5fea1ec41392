"""Frozen types of dropping retracted posts from queued digests (outbox/retract.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueuedDigest:
    """A digest row not yet claimed (queued or retry) and the posts of its edition."""

    outbox_id: int
    subscriber_id: int
    edition_key: str
    post_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Requeue:
    """A queued row moved to the edition rendered without the retracted posts."""

    outbox_id: int
    subscriber_id: int
    edition_key: str
    message_id: str


@dataclass(frozen=True, slots=True)
class RetractReport:
    """What dropping retracted posts from queued digests did."""

    retracted: tuple[int, ...] = ()  # ids of the retracted posts found in queued digests
    rerendered: int = 0  # rows moved to a new edition
    cancelled: int = 0  # rows whose edition was left empty (or already queued without them)
    editions: int = 0  # new editions rendered
