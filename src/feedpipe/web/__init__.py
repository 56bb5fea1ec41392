"""The subscriber web surface: feeds over HTTP, subscribe, unsubscribe, preferences, archive."""

from feedpipe.web.app import WebConfig, create_app
from feedpipe.web.mailer import ArchivedEdition, Mailer, MemoryMailer

__all__ = ["ArchivedEdition", "Mailer", "MemoryMailer", "WebConfig", "create_app"]
