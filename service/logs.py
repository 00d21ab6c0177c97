"""Structured logs: one JSON object (or one readable line) per record, carrying the id of
the request being served and the fields of named events.

`banditrec serve` hands `logging_config()` to uvicorn, which applies it in every worker
process too, so our lines and uvicorn's share one format and one level.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import sys
import time
from typing import Any, Literal

LogFormat = Literal["auto", "json", "text"]

# The id of the request this task is serving; set by service.middleware.RequestLog.
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_EVENTS = logging.getLogger("banditrec")


def log_event(event: str, /, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log a named event with its fields: `{"event": "clusters_fitted", "k": 8, ...}`.

    Field values should be JSON-able (str, numbers, bools, None, lists, dicts); anything
    else is written as its str().
    """
    _EVENTS.log(level, event, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, message, event fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one line of JSON."""
        return json.dumps(_fields_of(record, self), default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Formats a record as `TIME LEVEL logger: message key=value ...` for a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as one readable line (a traceback follows on its own lines)."""
        fields = _fields_of(record, self)
        head = f"{fields.pop('ts')} {fields.pop('level').upper():<7} {fields.pop('logger')}:"
        message = fields.pop("message")
        fields.pop("event", None)
        trace = fields.pop("exc", None)
        pairs = " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        line = " ".join(part for part in (head, message, pairs) if part)
        return f"{line}\n{trace}" if trace else line


def _fields_of(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """Return what a line holds, in the order it is written."""
    seconds = int(record.created)
    millis = int((record.created - seconds) * 1000)
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
    fields: dict[str, Any] = {
        "ts": ts,
        "level": record.levelname.lower(),
        "logger": record.name,
        "message": record.getMessage(),
    }
    event = getattr(record, "event", None)
    if event is not None:
        fields["event"] = event
    request_id = REQUEST_ID.get()
    if request_id is not None:
        fields["request_id"] = request_id
    for key, value in getattr(record, "fields", {}).items():
        fields.setdefault(key, value)
    fields["pid"] = record.process
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


def _text_value(value: Any) -> str:
    plain = (
        value if isinstance(value, str) else json.dumps(value, default=str, separators=(",", ":"))
    )
    return json.dumps(plain) if " " in plain or not plain else plain


class StderrHandler(logging.Handler):
    """Writes each record to whatever sys.stderr is at that moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the formatted record as one line."""
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def resolve_format(log_format: LogFormat) -> Literal["json", "text"]:
    """Return the concrete format: `auto` is text on a terminal, JSON anywhere else."""
    if log_format != "auto":
        return log_format
    isatty = getattr(sys.stderr, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def logging_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """Return a logging.config.dictConfig for our loggers and uvicorn's: one handler on
    stderr, one format, one level, and no uvicorn access log (RequestLog logs requests)."""
    formatter = JsonFormatter if resolve_format(log_format) == "json" else TextFormatter
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"banditrec": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {
            "stderr": {"()": f"{__name__}.StderrHandler", "formatter": "banditrec"},
            # Without a handler of its own, logging's last resort would print its warnings.
            "discard": {"class": "logging.NullHandler"},
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's default config gives these handlers of their own; ours propagate.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": ["discard"], "level": level, "propagate": False},
        },
    }


def configure_logging(level: str, log_format: LogFormat) -> dict[str, Any]:
    """Apply logging_config() to this process; return it (uvicorn applies it in workers)."""
    config = logging_config(level, log_format)
    logging.config.dictConfig(config)
    return config
