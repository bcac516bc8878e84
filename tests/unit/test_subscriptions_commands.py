"""Client commands (subscriptions.py): parse_command, what it accepts and how it refuses."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.subscriptions import (
    ACTIONS,
    EVENTS,
    MAX_BOT_PATTERNS,
    MAX_COMMAND_BYTES,
    MAX_PATTERN_CHARS,
    MESSAGE_KINDS,
    Command,
    CommandError,
    parse_command,
)
from tests.unit.subscriptions_support import command


def refusal(raw: bytes, max_bytes: int = MAX_COMMAND_BYTES) -> CommandError:
    with pytest.raises(CommandError) as caught:
        parse_command(raw, max_bytes)
    return caught.value


def padded_command(total_bytes: int) -> bytes:
    """A valid list command of exactly `total_bytes` bytes (JSON whitespace takes the slack)."""
    head, tail = b'{"action":"list"', b"}"
    raw = head + b" " * (total_bytes - len(head) - len(tail)) + tail
    assert len(raw) == total_bytes
    return raw


# --- parse_command: accepted ---------------------------------------------------------------


def test_parse_list() -> None:
    assert parse_command(command(action="list")) == Command("list")
    assert parse_command(command(action="list", id="q1")) == Command("list", request_id="q1")


def test_parse_subscribe_every_field() -> None:
    raw = command(
        action="subscribe",
        types=["ping"],
        bots=["bot:a", "bot:b*"],
        events=["status", "pingpong"],
        id=7,
    )
    assert parse_command(raw) == Command(
        "subscribe",
        types=frozenset({"ping"}),
        bots=("bot:a", "bot:b*"),
        events=frozenset({"status", "pingpong"}),
        request_id=7,
    )


def test_parse_unsubscribe_one_field() -> None:
    parsed = parse_command(command(action="unsubscribe", events=["alerts"]))
    assert parsed == Command("unsubscribe", events=frozenset({"alerts"}))
    assert parsed.types is None
    assert parsed.bots is None


def test_comma_separated_strings_in_place_of_lists() -> None:
    parsed = parse_command(
        command(action="subscribe", types="ping, pong", bots="bot:a,bot:b*", events="stats")
    )
    assert parsed.types == frozenset({"ping", "pong"})
    assert parsed.bots == ("bot:a", "bot:b*")
    assert parsed.events == frozenset({"stats"})


def test_bot_patterns_are_deduplicated_in_order() -> None:
    parsed = parse_command(command(action="subscribe", bots=["bot:b", "bot:a", "bot:b"]))
    assert parsed.bots == ("bot:b", "bot:a")


@pytest.mark.parametrize("request_id", ["abc", "", "x" * 64, 0, -5, 2**62])
def test_request_id_is_carried(request_id: str | int) -> None:
    assert parse_command(command(action="list", id=request_id)).request_id == request_id
    parsed = parse_command(command(action="subscribe", types=["pong"], id=request_id))
    assert parsed.request_id == request_id


def test_request_id_defaults_to_none() -> None:
    assert parse_command(command(action="list")).request_id is None
    assert parse_command(command(action="list", id=None)).request_id is None


def test_command_exactly_at_the_limit_is_accepted() -> None:
    assert parse_command(padded_command(MAX_COMMAND_BYTES)) == Command("list")


def test_limits_are_inclusive() -> None:
    patterns = [f"bot:{index}" for index in range(MAX_BOT_PATTERNS)]
    assert parse_command(command(action="subscribe", bots=patterns)).bots == tuple(patterns)
    longest = "b" * MAX_PATTERN_CHARS
    assert parse_command(command(action="subscribe", bots=[longest])).bots == (longest,)


def test_max_bytes_is_a_parameter() -> None:
    raw = command(action="list")
    assert parse_command(raw, max_bytes=len(raw)) == Command("list")
    error = refusal(raw, max_bytes=len(raw) - 1)
    assert error.code == "oversize"
    assert str(len(raw) - 1) in error.message


# --- parse_command: refused ----------------------------------------------------------------


ERROR_TABLE: list[tuple[str, bytes, str, str]] = [
    # (case id, raw, code, a fragment the message must contain)
    ("oversize-valid-json", padded_command(MAX_COMMAND_BYTES + 1), "oversize", "4097"),
    ("oversize-garbage", b"x" * (MAX_COMMAND_BYTES + 1), "oversize", str(MAX_COMMAND_BYTES)),
    ("garbage", b"subscribe ping", "invalid_json", "JSON"),
    ("empty", b"", "invalid_json", "JSON"),
    ("truncated", b'{"action":"list"', "invalid_json", "JSON"),
    ("invalid-utf8", b'{"action":"list","id":"\xff\xfe"}', "invalid_json", "JSON"),
    ("raw-binary", b"\x00\x81\xfe\xff", "invalid_json", "JSON"),
    ("nan", b'{"action":"list","id":NaN}', "invalid_json", "JSON"),
    ("infinity", b'{"action":"list","id":Infinity}', "invalid_json", "JSON"),
    ("too-deep", b"[" * 2000, "invalid_json", "JSON"),
    ("array", b'["subscribe"]', "bad_command", "object"),
    ("string", b'"subscribe"', "bad_command", "object"),
    ("number", b"42", "bad_command", "object"),
    ("null", b"null", "bad_command", "object"),
    ("binary-in-a-string", b'"\\u0000\\u0001\\u00ff\\ufffd"', "bad_command", "object"),
    ("subscribe-no-fields", command(action="subscribe"), "bad_command", '"subscribe"'),
    ("unsubscribe-only-id", command(action="unsubscribe", id=1), "bad_command", '"unsubscribe"'),
    ("unknown-action", command(action="publish"), "unknown_action", "publish"),
    ("action-case", command(action="SUBSCRIBE"), "unknown_action", "SUBSCRIBE"),
    ("action-number", command(action=3), "unknown_action", "'3'"),
    ("no-action", command(types=["ping"]), "unknown_action", "subscribe"),
    ("unknown-field", command(action="subscribe", type=["ping"]), "bad_field", "type"),
    ("unknown-field-list", command(action="list", verbose=True), "bad_field", "verbose"),
    ("types-number", command(action="subscribe", types=1), "bad_field", '"types"'),
    ("types-null", command(action="subscribe", types=None), "bad_field", '"types"'),
    ("types-mixed", command(action="subscribe", types=["ping", 2]), "bad_field", '"types"'),
    ("bots-object", command(action="subscribe", bots={"a": 1}), "bad_field", '"bots"'),
    ("events-bool", command(action="subscribe", events=True), "bad_field", '"events"'),
    ("unknown-type", command(action="subscribe", types=["ping", "pang"]), "bad_field", "pang"),
    ("unknown-event", command(action="subscribe", events=["alert"]), "bad_field", "alert"),
    ("unknown-type-csv", command(action="unsubscribe", types="ping,PONG"), "bad_field", "PONG"),
    (
        "too-many-bots",
        command(action="subscribe", bots=[f"b{index}" for index in range(MAX_BOT_PATTERNS + 1)]),
        "bad_field",
        '"bots"',
    ),
    (
        "pattern-too-long",
        command(action="subscribe", bots=["ok", "b" * (MAX_PATTERN_CHARS + 1)]),
        "bad_field",
        '"bots"',
    ),
    ("pattern-empty", command(action="subscribe", bots=[""]), "bad_field", '"bots"'),
    ("pattern-blank", command(action="subscribe", bots=["bot:a", "   "]), "bad_field", '"bots"'),
    ("type-empty", command(action="subscribe", types=[""]), "bad_field", '"types"'),
    ("id-bool", command(action="list", id=True), "bad_field", '"id"'),
    ("id-float", command(action="list", id=1.5), "bad_field", '"id"'),
    ("id-object", command(action="list", id={"n": 1}), "bad_field", '"id"'),
    ("id-list", command(action="list", id=[1]), "bad_field", '"id"'),
    ("id-too-long", command(action="list", id="x" * 65), "bad_field", '"id"'),
    ("id-huge-int", b'{"action":"list","id":' + b"9" * 70 + b"}", "bad_field", '"id"'),
]


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [pytest.param(raw, code, fragment, id=case) for case, raw, code, fragment in ERROR_TABLE],
)
def test_parse_command_errors(raw: bytes, code: str, fragment: str) -> None:
    error = refusal(raw)
    assert error.code == code
    assert fragment in error.message
    assert str(error) == error.message
    assert isinstance(error, ValueError)


def test_oversize_is_checked_before_parsing() -> None:
    raw = command(action="subscribe", types=["ping"], id="x" * MAX_COMMAND_BYTES)
    assert orjson.loads(raw)["action"] == "subscribe"  # valid JSON, just too big
    error = refusal(raw)
    assert error.code == "oversize"
    assert str(len(raw)) in error.message


def test_unknown_action_message_lists_the_actions() -> None:
    error = refusal(command(action="publish"))
    assert all(action in error.message for action in ACTIONS)


def test_unknown_type_message_lists_the_allowed_types() -> None:
    error = refusal(command(action="subscribe", types=["pang"]))
    assert all(kind in error.message for kind in MESSAGE_KINDS)


_json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8)
)
_json_values = st.recursive(
    _json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_command_like = st.dictionaries(
    st.sampled_from(["action", "types", "bots", "events", "id", "extra"]),
    st.sampled_from([*ACTIONS, *MESSAGE_KINDS, *EVENTS, "bot:*", "", "nope"])
    | st.lists(st.sampled_from([*MESSAGE_KINDS, *EVENTS, "bot:*", "", " ", "nope"]), max_size=4)
    | _json_values,
    max_size=5,
)


def _outcome(raw: bytes) -> Command | CommandError:
    try:
        return parse_command(raw)
    except CommandError as exc:
        return exc


@given(st.binary(max_size=MAX_COMMAND_BYTES + 16))
def test_arbitrary_bytes_give_a_command_or_a_command_error(raw: bytes) -> None:
    outcome = _outcome(raw)
    assert isinstance(outcome, Command | CommandError)
    if isinstance(outcome, CommandError):
        assert outcome.code in {
            "oversize",
            "invalid_json",
            "bad_command",
            "unknown_action",
            "bad_field",
        }
        assert outcome.message


@given(_command_like | _json_values)
def test_arbitrary_json_gives_a_command_or_a_command_error(body: Any) -> None:
    outcome = _outcome(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS))
    assert isinstance(outcome, Command | CommandError)
    if isinstance(outcome, Command):
        assert outcome.action in ACTIONS
        assert outcome.types is None or outcome.types <= set(MESSAGE_KINDS)
        assert outcome.events is None or outcome.events <= set(EVENTS)
        assert outcome.bots is None or all(outcome.bots)
