"""Logging to stderr, one line per event: readable by default, JSON for log shippers.

A redacting filter replaces every configured secret, in case one ever reaches a
message through a library's error text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable

from notifier.events import isoformat

# APScheduler warns about every tick skipped while the previous one still runs: noise.
QUIET_LOGGERS = {
    "urllib3": logging.WARNING,
    "requests": logging.WARNING,
    "apscheduler": logging.ERROR,
}


class _Redactor(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{isoformat(record.created)} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info).replace("\n", " | ")
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": isoformat(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


_REDACTOR = _Redactor()

FORMATS = ("text", "json")
FORMAT_VARIABLE = "DATASAUR_NOTIFIER_LOG_FORMAT"  # the container image sets it to json


def format_from_environment() -> str:
    """``$DATASAUR_NOTIFIER_LOG_FORMAT`` if set, else ``text``; ValueError if not a format."""
    value = os.environ.get(FORMAT_VARIABLE) or "text"
    if value not in FORMATS:
        raise ValueError(f"{FORMAT_VARIABLE}={value!r}: expected one of {', '.join(FORMATS)}")
    return value


def setup(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send every log record to stderr in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if log_format == "json" else _TextFormatter())
    handler.addFilter(_REDACTOR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)


def scrub(text: str) -> str:
    """``text`` with every secret given to :func:`redact` replaced (for stored error texts)."""
    for secret in _REDACTOR.secrets:
        text = text.replace(secret, "***")
    return text


def redact(secrets: Iterable[str]) -> None:
    """Never let these strings reach a log line."""
    _REDACTOR.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
