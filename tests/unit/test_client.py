"""What the client makes of any frame a relay (or something posing as one) sends (pure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.client import (
    MAX_ENVELOPE_DEPTH,
    MAX_RETRY_AFTER_S,
    Heartbeat,
    InvalidFrame,
    describe,
    one_line_json,
    parse_envelope,
    parse_retry_after,
)

VALID = (
    b'{"type":"bot:pingpong","data":{"type":"pong","latency":7.5,"timestamp":1234567890,'
    b'"source":"bot"},"timestamp":1234567891,"source":"bot"}'
)


def deep(levels: int) -> str:
    """A bot:pingpong envelope `levels` deep in all."""
    inner = levels - 2
    return '{"type":"bot:pingpong","data":{"type":"ping","x":' + "[" * inner + "]" * inner + "}}"


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("not json {", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "not a JSON object but list"),
        ("42", "not a JSON object but int"),
        ('"text"', "not a JSON object but str"),
        ("null", "not a JSON object but NoneType"),
        ("{}", 'no "type" string'),
        ('{"type":5}', 'no "type" string'),
        ('{"type":["bot:pingpong"]}', 'no "type" string'),
        ('{"type":"bot:pingpong"}', 'without a "data" object'),
        ('{"type":"bot:pingpong","data":[1]}', 'without a "data" object'),
        ('{"type":"bot:pingpong","data":"ping"}', 'without a "data" object'),
        (deep(MAX_ENVELOPE_DEPTH + 1), f"nested deeper than {MAX_ENVELOPE_DEPTH}"),
        (deep(1023), f"nested deeper than {MAX_ENVELOPE_DEPTH}"),
        (deep(1025), "not JSON"),  # past what orjson reads
        ('{"type":"x","a":NaN}', "not JSON"),
        ('{"type":"x"}{"type":"y"}', "not JSON"),
    ],
)
def test_frames_that_are_no_envelope_say_why(frame: str, why: str) -> None:
    with pytest.raises(InvalidFrame, match=why.replace("[", r"\[")):
        parse_envelope(frame)


@pytest.mark.parametrize(
    "frame",
    [
        VALID.decode(),
        VALID,
        deep(MAX_ENVELOPE_DEPTH),
        '{"type":"status","bot":"b","status":"up"}',
        '{"type":"bot:pingpong","data":{"type":{"x":1},"latency":"fast","timestamp":[1]},'
        '"timestamp":"soon"}',
    ],
)
def test_envelopes_are_parsed(frame: str | bytes) -> None:
    assert parse_envelope(frame) == orjson.loads(frame)


def test_describe_and_heartbeat_survive_weird_types() -> None:
    envelope = parse_envelope(
        '{"type":"bot:pingpong","data":{"type":{"x":1},"latency":"fast","timestamp":[1]},'
        '"timestamp":"soon"}'
    )
    assert describe(envelope) == "? latency N/A bot time N/A relay time N/A"
    beat = Heartbeat(envelope, 5.0)
    assert (beat.bot_to_relay_ms, beat.relay_to_client_ms, beat.total_ms) == (None, None, None)


def test_describe_survives_what_cannot_be_encoded_again() -> None:
    # 1,000 levels: orjson reads it (and Python's str() of it would recurse too deep).
    nested: Any = []
    for _ in range(1000):
        nested = [nested]
    assert describe({"type": "stats", "x": nested}).startswith("stats: (not shown: ")
    assert describe({"type": "bot:pingpong", "data": {"type": nested}}).startswith("? latency")
    assert describe({"type": nested}).startswith("?: (not shown: ")


def test_describe_is_safe_for_a_terminal() -> None:
    line = describe(
        {
            "type": "bot:pingpong",
            "data": {"type": "\x1b[2Jping\n\u2028", "latency": 1},
            "timestamp": 0,
        }
    )
    assert line.startswith("\\X1B[2JPING\\N\\U2028 latency 1 ms")
    other = describe({"type": "x\x1b]0;t\x07", "m": "\x9b31m \u2028 \x1b"})
    assert other.isprintable()
    assert orjson.loads(other.split(": ", 1)[1]) == {
        "type": "x\x1b]0;t\x07",
        "m": "\x9b31m \u2028 \x1b",
    }


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values, st.booleans())
def test_one_line_json_means_the_same_on_one_printable_line(value: Any, indent: bool) -> None:
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    line = one_line_json(text)
    assert "\n" not in line
    assert "\r" not in line
    assert not any("\x7f" <= char <= "\x9f" or char in "\u2028\u2029" for char in line)
    assert orjson.loads(line) == value


@given(json_values)
def test_any_json_frame_is_an_envelope_or_invalid_and_describable(value: Any) -> None:
    try:
        envelope = parse_envelope(orjson.dumps(value))
    except InvalidFrame:
        return
    assert isinstance(describe(envelope), str)
    assert "\n" not in describe(envelope)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 1 ", 1.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("60", 60.0),
        ("61", MAX_RETRY_AFTER_S),
        ("86400", MAX_RETRY_AFTER_S),
        ("9" * 400, MAX_RETRY_AFTER_S),
        (None, None),
        ("", None),
        ("soon", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # a date: the relay sends seconds
        ("-1", None),
        ("-0.5", None),
        ("nan", None),
        ("inf", None),
        ("1e3", None),
        ("+5", None),
        ("\uff15", None),  # a fullwidth 5: a digit to Python, not to HTTP
    ],
)
def test_retry_after_is_seconds_capped_and_anything_else_is_ignored(
    header: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(header) == seconds


@given(st.text())
def test_retry_after_is_never_negative_nor_past_the_cap(header: str) -> None:
    seconds = parse_retry_after(header)
    assert seconds is None or 0 <= seconds <= MAX_RETRY_AFTER_S
