"""Structured one-line logs (key=value or JSON) through stdlib logging, with secrets masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from feedpipe.store import mask

LOGGER = "feedpipe.worker"
FIELDS = "fields"  # the `extra` key carrying an event's fields
_BARE = re.compile(r"^[\w.,:/+@<>-]+$")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with its fields (counts, durations, identifiers)."""
    log_fields(logger, name, fields, level)


def log_fields(
    logger: logging.Logger, name: str, fields: Mapping[str, Any], level: int = logging.INFO
) -> None:
    """Log one event whose fields are already a mapping."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={FIELDS: fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": mask(record.getMessage()),
    }
    extra = getattr(record, FIELDS, None)
    if isinstance(extra, Mapping):
        base.update({k: _plain(v) for k, v in extra.items()})
    if record.exc_info and record.exc_info[0] is not None:
        base["error"] = mask(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
    return base


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds")
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, bool | int):
        return value
    return mask(str(value))


def _kv_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    text = str(value)
    return text if text and _BARE.match(text) else json.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """`ts=… level=info logger=… event=sync added=3 seconds=0.12`: one line per event."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv_value(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


class _SkipExpected(logging.Filter):
    """Drops APScheduler's note that a job is still running: a long dispatch drain is normal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


def configure_logging(
    fmt: Literal["kv", "json"], level: str, stream: Any = None
) -> logging.Handler:
    """Send feedpipe's and APScheduler's logs to `stream` (stderr) in `fmt`; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    for name, lvl in (("feedpipe", level.upper()), ("apscheduler", "WARNING")):
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_feedpipe", False)]
        handler._feedpipe = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(lvl)
        logger.propagate = False
    logging.getLogger("apscheduler.scheduler").addFilter(_SkipExpected())
    return handler
