"""Every domain type the store takes or returns: frozen dataclasses and enums.

The names load on first use (PEP 562), so a command line that only needs a few enums (click
choices) does not build every dataclass and compile the text rules' patterns at start-up.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from feedpipe.model.emails import DigestSection, EditionContent, Recipient
    from feedpipe.model.outbox import (
        CLAIMABLE,
        PENDING,
        Claim,
        ClaimedMessage,
        Decision,
        DispatchReport,
        Failure,
        FailureGroup,
        FillReport,
        MessageKind,
        NewEdition,
        NewMessage,
        OutboxFill,
        OutboxState,
        RecordReport,
        SendReport,
        SentEdition,
    )
    from feedpipe.model.posts import (
        BuildReport,
        Document,
        Entry,
        FeedSpec,
        ParsedDocument,
        Post,
        Skip,
        SyncReport,
        Term,
        TermKind,
    )
    from feedpipe.model.runs import JOBS, RunRecord
    from feedpipe.model.subscribers import (
        STOPPED,
        TRANSITIONS,
        WEEKDAYS,
        Action,
        DigestPost,
        Frequency,
        NewSubscriber,
        Schedule,
        Subscriber,
        SubscriberStatus,
        email_key,
        moves,
        transition,
    )
    from feedpipe.model.sync import (
        DocState,
        DocWrite,
        EntryLink,
        LinkWrite,
        PostRef,
        PostWrite,
        SyncChanges,
    )

_HOME = {
    "Action": "feedpipe.model.subscribers",
    "BuildReport": "feedpipe.model.posts",
    "CLAIMABLE": "feedpipe.model.outbox",
    "Claim": "feedpipe.model.outbox",
    "ClaimedMessage": "feedpipe.model.outbox",
    "Decision": "feedpipe.model.outbox",
    "DigestPost": "feedpipe.model.subscribers",
    "DigestSection": "feedpipe.model.emails",
    "DispatchReport": "feedpipe.model.outbox",
    "DocState": "feedpipe.model.sync",
    "DocWrite": "feedpipe.model.sync",
    "Document": "feedpipe.model.posts",
    "EditionContent": "feedpipe.model.emails",
    "Entry": "feedpipe.model.posts",
    "EntryLink": "feedpipe.model.sync",
    "Failure": "feedpipe.model.outbox",
    "FailureGroup": "feedpipe.model.outbox",
    "FeedSpec": "feedpipe.model.posts",
    "FillReport": "feedpipe.model.outbox",
    "Frequency": "feedpipe.model.subscribers",
    "JOBS": "feedpipe.model.runs",
    "LinkWrite": "feedpipe.model.sync",
    "MessageKind": "feedpipe.model.outbox",
    "NewEdition": "feedpipe.model.outbox",
    "NewMessage": "feedpipe.model.outbox",
    "NewSubscriber": "feedpipe.model.subscribers",
    "OutboxFill": "feedpipe.model.outbox",
    "OutboxState": "feedpipe.model.outbox",
    "PENDING": "feedpipe.model.outbox",
    "ParsedDocument": "feedpipe.model.posts",
    "Post": "feedpipe.model.posts",
    "PostRef": "feedpipe.model.sync",
    "PostWrite": "feedpipe.model.sync",
    "Recipient": "feedpipe.model.emails",
    "RecordReport": "feedpipe.model.outbox",
    "RunRecord": "feedpipe.model.runs",
    "STOPPED": "feedpipe.model.subscribers",
    "Schedule": "feedpipe.model.subscribers",
    "SendReport": "feedpipe.model.outbox",
    "SentEdition": "feedpipe.model.outbox",
    "Skip": "feedpipe.model.posts",
    "Subscriber": "feedpipe.model.subscribers",
    "SubscriberStatus": "feedpipe.model.subscribers",
    "SyncChanges": "feedpipe.model.sync",
    "SyncReport": "feedpipe.model.posts",
    "TRANSITIONS": "feedpipe.model.subscribers",
    "Term": "feedpipe.model.posts",
    "TermKind": "feedpipe.model.posts",
    "WEEKDAYS": "feedpipe.model.subscribers",
    "email_key": "feedpipe.model.subscribers",
    "moves": "feedpipe.model.subscribers",
    "transition": "feedpipe.model.subscribers",
}

__all__ = [
    "CLAIMABLE",
    "JOBS",
    "PENDING",
    "STOPPED",
    "TRANSITIONS",
    "WEEKDAYS",
    "Action",
    "BuildReport",
    "Claim",
    "ClaimedMessage",
    "Decision",
    "DigestPost",
    "DigestSection",
    "DispatchReport",
    "DocState",
    "DocWrite",
    "Document",
    "EditionContent",
    "Entry",
    "EntryLink",
    "Failure",
    "FailureGroup",
    "FeedSpec",
    "FillReport",
    "Frequency",
    "LinkWrite",
    "MessageKind",
    "NewEdition",
    "NewMessage",
    "NewSubscriber",
    "OutboxFill",
    "OutboxState",
    "ParsedDocument",
    "Post",
    "PostRef",
    "PostWrite",
    "Recipient",
    "RecordReport",
    "RunRecord",
    "Schedule",
    "SendReport",
    "SentEdition",
    "Skip",
    "Subscriber",
    "SubscriberStatus",
    "SyncChanges",
    "SyncReport",
    "Term",
    "TermKind",
    "email_key",
    "moves",
    "transition",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'feedpipe.model' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
