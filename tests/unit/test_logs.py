"""The JSON log format: one object per line, every `extra=` fact a field."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from pingpong_relay.logs import JsonFormatter, setup_logging


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def logger(stream: io.StringIO) -> Iterator[logging.Logger]:
    logger = logging.getLogger("pingpong_relay.test_logs")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger
    logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    lines = text.splitlines()
    parsed = [orjson.loads(line) for line in lines]
    assert all(isinstance(entry, dict) for entry in parsed)
    return parsed


def test_one_object_per_line_with_the_standard_fields(
    logger: logging.Logger, stream: io.StringIO
) -> None:
    logger.info("hello %s", "world")
    logger.warning("multi\nline\r\nmessage")
    logger.debug("third")
    first, second, third = entries(stream)
    assert first["level"] == "INFO"
    assert first["logger"] == "pingpong_relay.test_logs"
    assert first["message"] == "hello world"
    assert second["message"] == "multi\nline\r\nmessage"
    assert second["level"] == "WARNING"
    assert third["level"] == "DEBUG"
    for entry in (first, second, third):
        assert list(entry)[:4] == ["time", "level", "logger", "message"]


def test_time_is_utc_iso8601_with_milliseconds(logger: logging.Logger, stream: io.StringIO) -> None:
    before = dt.datetime.now(dt.UTC)
    logger.info("tick")
    after = dt.datetime.now(dt.UTC)
    (entry,) = entries(stream)
    text = entry["time"]
    assert text.endswith("Z")
    assert len(text) == len("2024-01-01T00:00:00.000Z")
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert before - dt.timedelta(milliseconds=1) <= moment <= after


def test_every_extra_field_is_kept(logger: logging.Logger, stream: io.StringIO) -> None:
    extra = {
        "event": "received",
        "channel": "bot:pingpong",
        "latency_ms": 12.5,
        "bot_timestamp_ms": None,
        "clients": 3,
        "ok": True,
        "channels": ["a", "b"],
        "nested": {"k": [1, {"deep": "ü"}]},
    }
    logger.info("received", extra=extra)
    (entry,) = entries(stream)
    for key, value in extra.items():
        assert entry[key] == value
    # Nothing of the LogRecord's own plumbing leaks in.
    for internal in ("args", "msg", "levelno", "pathname", "lineno", "created", "exc_info"):
        assert internal not in entry


def test_exception_is_included(logger: logging.Logger, stream: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed", extra={"event": "crash"})
    (entry,) = entries(stream)
    assert entry["level"] == "ERROR"
    assert entry["event"] == "crash"
    assert "RuntimeError: boom" in entry["exception"]
    assert "Traceback" in entry["exception"]


class Opaque:
    def __repr__(self) -> str:
        return "<Opaque thing>"


NOT_JSON: list[tuple[str, object]] = [
    ("object", Opaque()),
    ("set", {1}),
    ("bytes", b"\xff\x00raw"),
    ("decimal", decimal.Decimal("1.5")),
    ("exception", ValueError("bad")),
    ("type", int),
    ("complex", 1 + 2j),
    ("nested object", {"inner": [Opaque()]}),
    ("int over 64 bits", 2**70),
    ("non-string keys", {1: "one", (2, 3): "tuple"}),
]


@pytest.mark.parametrize("value", [v for _, v in NOT_JSON], ids=[name for name, _ in NOT_JSON])
def test_non_json_extras_do_not_crash_it(value: object) -> None:
    record = logging.LogRecord(
        "pingpong_relay.test_logs", logging.INFO, __file__, 1, "with %s", ("args",), None
    )
    record.odd = value
    record.event = "odd"
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["message"] == "with args"
    assert entry["event"] == "odd"
    assert "odd" in entry


def test_opaque_extras_are_shown_by_repr() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.thing = Opaque()
    assert orjson.loads(JsonFormatter().format(record))["thing"] == "<Opaque thing>"


def test_setup_logging_json(stream: io.StringIO) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("INFO", "json", stream)
        logging.getLogger("pingpong_relay.x").info("up", extra={"event": "start"})
        logging.getLogger("pingpong_relay.x").debug("hidden")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    (entry,) = entries(stream)
    assert (entry["message"], entry["event"], entry["level"]) == ("up", "start", "INFO")


def test_background_logging_writes_every_record_by_the_time_it_is_stopped() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        stop = setup_logging("INFO", "json", stream, background=True)
        for n in range(500):
            logging.getLogger("pingpong_relay.test").info("line %d", n, extra={"n": n})
        stop()
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["n"] for line in lines] == list(range(500))


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("WARNING", False), ("DEBUG", True)])
def test_apprise_retries_stay_out_of_the_log_unless_at_debug(level: str, shown: bool) -> None:
    # The notification sender logs a channel's outage once; Apprise would log every try.
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging(level, "text", stream)
        logging.getLogger("apprise").warning("A Connection error occurred sending JSON")
        logging.getLogger("pingpong_relay.notify").warning("channel 1 failed")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.getLogger("apprise").propagate = True
    assert ("A Connection error occurred" in stream.getvalue()) is shown
    assert "channel 1 failed" in stream.getvalue()


# --- the text format: one line per record, whatever the message quotes ------------------


def text_lines(*args: object, exc: BaseException | None = None) -> list[str]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("INFO", "text", stream)
        log = logging.getLogger("pingpong_relay.test_text")
        if exc is None:
            log.warning(*args)
        else:
            try:
                raise exc
            except type(exc):
                log.exception(*args)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return stream.getvalue().splitlines()


FORGED = "2026-01-01 00:00:00,000 ERROR   pingpong_relay.app.relay: FORGED"


@pytest.mark.parametrize(
    ("untrusted", "shown"),
    [
        (f"x\n{FORGED}", f"x\\n{FORGED}"),
        (f"x\r\n{FORGED}", f"x\\r\\n{FORGED}"),
        (f"x\r{FORGED}", f"x\\r{FORGED}"),
        ("\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07"),
        ("nul\x00 tab\t del\x7f", "nul\\x00 tab\\t del\\x7f"),
        ("c1 \x85 \x9b31m", "c1 \\x85 \\x9b31m"),
        ("ls \u2028 ps \u2029", "ls \\u2028 ps \\u2029"),
        ("vt \x0b ff \x0c fs \x1c", "vt \\x0b ff \\x0c fs \\x1c"),
        ("bøt 猫 🤖 \\n", "bøt 猫 🤖 \\n"),  # printable text, a literal backslash: as they are
    ],
)
def test_text_format_escapes_control_characters_in_the_message(untrusted: str, shown: str) -> None:
    (line,) = text_lines("rejected message on %s: %s", "bot:pingpong", untrusted)
    assert line.endswith(f"pingpong_relay.test_text: rejected message on bot:pingpong: {shown}")
    assert "WARNING" in line


def test_text_format_escapes_a_message_without_arguments() -> None:
    (line,) = text_lines(f"plain\n{FORGED}")
    assert line.endswith(f"plain\\n{FORGED}")


def test_text_format_keeps_a_traceback_on_its_own_lines() -> None:
    lines = text_lines("failed on %s", f"a\n{FORGED}", exc=ValueError("boom"))
    assert lines[0].endswith(f"failed on a\\n{FORGED}")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
    assert not any(line.startswith(FORGED) for line in lines)


def test_text_format_leaves_the_record_to_other_handlers_unchanged(
    logger: logging.Logger, stream: io.StringIO
) -> None:
    from pingpong_relay.logs import TextFormatter

    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(TextFormatter())
    logger.addHandler(handler)
    try:
        logger.warning("a\nb")
    finally:
        logger.removeHandler(handler)
    assert text.getvalue().endswith("a\\nb\n")
    assert [entry["message"] for entry in entries(stream)] == ["a\nb"]
