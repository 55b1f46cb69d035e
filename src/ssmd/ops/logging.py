"""Structured logs: one JSON object per line, so machines (Loki, jq, agents) read them.

Every line has `ts` (ISO-8601 UTC, microseconds), `level`, `logger`, `msg` and
`component`; anything passed as `extra={...}` is added as top-level fields, and an
exception becomes `exc` (type: message) plus `traceback`. Values that are not JSON
(paths, decimals) are written as strings.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """LogRecord -> one JSON line."""

    def __init__(self, component: str = "ssmd") -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="microseconds")
        obj: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "component": self.component,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_") and key not in obj:
                obj[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            etype, evalue, tb = record.exc_info
            obj["exc"] = f"{etype.__name__}: {evalue}"
            obj["traceback"] = "".join(traceback.format_exception(etype, evalue, tb))
        return orjson.dumps(obj, default=str).decode()


def setup_logging(
    level: str | int = "INFO", component: str = "ssmd", stream: TextIO | None = None
) -> logging.Logger:
    """Route every logger to one JSON-lines handler (replacing earlier ones; idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_ssmd_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    handler._ssmd_json = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return root
