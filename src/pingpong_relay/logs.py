"""Log set-up: human text lines, or one JSON object per line with each fact as a field."""

from __future__ import annotations

import copy
import errno
import logging
import logging.handlers
import os
import queue
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from pingpong_relay.messages import escape_controls

__all__ = ["JsonFormatter", "TextFormatter", "os_words", "setup_logging"]

# Enough for a long burst at INFO; past it records are dropped (and counted), not queued.
_QUEUE_RECORDS = 100_000

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class TextFormatter(logging.Formatter):
    """One human line per record. The message can quote what bots and clients sent, so
    its control characters are escaped: a newline in it cannot start a forged line, nor
    an escape sequence reach the terminal. A traceback (ours) keeps its lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line for `record`, its message's control characters escaped."""
        safe = copy.copy(record)  # other handlers may see the same record
        safe.message = escape_controls(record.message)
        return super().formatMessage(safe)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ms), level, logger, message, then each field
    passed with `extra=` and any traceback. JSON escapes control characters itself."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON; a field JSON cannot hold is written as its repr."""
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


class _DroppingQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread; when the queue is full, drops and counts them.

    A log sink that stalls (a full pipe, a stuck journald) must slow nothing but the log.
    """

    def __init__(self, log_queue: queue.Queue[logging.LogRecord]) -> None:
        super().__init__(log_queue)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1


def setup_logging(
    level: str, fmt: str, stream: TextIO | None = None, *, background: bool = False
) -> Callable[[], None]:
    """Configures the root logger; returns a function that flushes and stops logging.

    With background=True, formatting and writing happen on a thread of their own, so
    the event loop never blocks on the log's destination.
    """
    writer = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        writer.setFormatter(JsonFormatter())
    else:
        writer.setFormatter(TextFormatter())
    handler: logging.Handler = writer
    stop: Callable[[], None] = writer.flush
    if background:
        log_queue: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=_QUEUE_RECORDS)
        listener = logging.handlers.QueueListener(log_queue, writer)
        listener.start()
        queue_handler = _DroppingQueueHandler(log_queue)

        def stop() -> None:
            listener.stop()
            if queue_handler.dropped:
                writer.handle(
                    logging.makeLogRecord(
                        {
                            "name": __name__,
                            "levelno": logging.WARNING,
                            "levelname": "WARNING",
                            "msg": f"{queue_handler.dropped} log records were dropped: "
                            "the log destination could not keep up",
                        }
                    )
                )
            writer.flush()

        handler = queue_handler
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # picows and aiohttp log each handshake and access at INFO; keep them quieter
    # unless the operator asked for DEBUG.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("picows", "aiohttp.access"):
        logging.getLogger(name).setLevel(quiet)
    # Apprise logs every failed try of a notification at WARNING; the sender logs a
    # channel's outage once, quoting Apprise's reason. Apprise still sees its own records
    # (it hands them to the sender), they only stay out of the log unless at DEBUG.
    logging.getLogger("apprise").propagate = level == "DEBUG"
    return stop


def os_words(exc: BaseException) -> str | None:
    """The OS's words for why a call failed ("Connection refused"): those of the first
    OSError in `exc` and its causes whose errno the OS knows; None when there is none
    (a DNS failure, an error of a library's own)."""
    cause: BaseException | None = exc
    for _ in range(8):  # a chain of causes is short; never follow one forever
        if cause is None:
            break
        if (
            isinstance(cause, OSError)
            and cause.errno is not None
            and cause.errno in errno.errorcode
        ):
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return None
