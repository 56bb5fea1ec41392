"""The environment variables feedpipe reads, by name (importable without loading pydantic)."""

from __future__ import annotations

CONFIG_ENV = "FEEDPIPE_CONFIG"
STORE_URL_ENV = "FEEDPIPE_STORE_URL"
SECRET_KEY_ENV = "FEEDPIPE_SECRET_KEY"
SMTP_PASSWORD_ENV = "FEEDPIPE_SMTP_PASSWORD"
ACCESS_LOG_ENV = "FEEDPIPE_ACCESS_LOG"  # "1": `serve --access-log` (to its worker processes)
IMAP_PASSWORD_ENV = "FEEDPIPE_IMAP_PASSWORD"
