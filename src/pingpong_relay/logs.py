"""Log set-up: human text lines, or one JSON object per line with each fact as a field."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(entry, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            # orjson refuses a few values without consulting `default` (integers beyond
            # 64 bits, for one); a log line must never be lost to its own fields.
            safe = {key: _json_safe(value) for key, value in entry.items()}
            return orjson.dumps(safe).decode()


def _json_safe(value: Any) -> Any:
    try:
        orjson.dumps(value, default=repr, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(value)
    return value


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # picows and aiohttp log each handshake and access at INFO; keep them quieter
    # unless the operator asked for DEBUG.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("picows", "aiohttp.access"):
        logging.getLogger(name).setLevel(quiet)
