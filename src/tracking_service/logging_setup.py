"""How log lines look: plain text or one JSON object a line, with the request id in both.

`TRACKING_LOG_FORMAT=text` (the default) writes `time LEVEL logger: message`; `json` writes
one JSON object a line with `time` (ISO 8601, UTC), `level`, `logger`, `message`,
`request_id` when the line is written while a request is served, the record's extra fields
(e.g. the access log's `method`, `path`, `status`, `duration_ms`) and `exception` with the
traceback when there is one: what log collectors index without parsing.

The request id lives in a context variable, `REQUEST_ID`, set by the request-id middleware
(`api/request_id.py`) for the time of a request, so any line logged by the code serving it
carries the id without that code passing it around. Records formatted in another thread (the
access log's) carry it as a `request_id` attribute instead, which wins over the variable.

`configure` installs one handler on the root logger, as `logging.basicConfig` would: when the
root already has handlers that are not ours (pytest's, an embedding program's), it leaves
logging alone.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str | None] = ContextVar("tracking_request_id", default=None)
"""The id of the request being served in this context (None outside requests)."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every record has: the rest were passed as `extra` (or set by the access log).
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's message with terminal colours
}
_OURS = "_tracking_service_handler"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def request_id_of(record: logging.LogRecord) -> str | None:
    """The request id a record was logged under, if any."""
    given = getattr(record, "request_id", None)
    return given if isinstance(given, str) else REQUEST_ID.get()


class TextFormatter(logging.Formatter):
    """The classic line, with ` request_id=...` at the end of lines logged in a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_of(record)
        return line if request_id is None else f"{line} request_id={request_id}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        instant = datetime.fromtimestamp(record.created, UTC)
        entry: dict[str, Any] = {
            "time": instant.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_of(record)
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure(level: str, fmt: LogFormat) -> bool:
    """Log to stderr at `level` in format `fmt` through one root handler of ours (its format
    replaced when it exists already). Returns False, changing nothing, when the root logger
    has someone else's handlers."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _OURS, False)]
    if not ours and root.handlers:
        return False
    if not ours:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        setattr(handler, _OURS, True)
        root.addHandler(handler)
        ours = [handler]
    for handler in ours:
        handler.setFormatter(formatter(fmt))
    root.setLevel(level.upper())
    return True


def configure_server(level: str, fmt: LogFormat) -> None:
    """`configure` for a process serving the API (called by the app factory, so it holds in
    every process `serve --workers N` starts). In JSON, uvicorn's own lines go through the
    root handler too, instead of uvicorn's text handlers, so every line is one object; a
    uvicorn logger left without handlers and not propagating (its access log, turned off) stays
    off."""
    if configure(level, fmt) and fmt == "json":
        for name in UVICORN_LOGGERS:
            logger = logging.getLogger(name)
            if logger.handlers:
                logger.handlers.clear()
                logger.propagate = True
