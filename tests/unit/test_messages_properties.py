"""Property tests: any input is parsed or refused, and valid messages reach the envelope."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.messages import (
    MAX_DEPTH,
    MAX_LATENCY_MS,
    MAX_PAYLOAD_BYTES,
    MAX_TIMESTAMP_MS,
    REJECT_REASONS,
    BotMessage,
    RejectedMessage,
    encode_envelope,
    excerpt,
    nesting_depth_exceeds,
    parse_bot_message,
)
from tests.unit.messages_support import ENVELOPE_KEYS, excerpt_bound


def depth_of(value: Any) -> int:
    """The nesting depth by definition: a scalar is 0, an array or object one more than
    its deepest member."""
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    return 0


# --- properties ------------------------------------------------------------------------


def parse_or_reject(raw: bytes) -> BotMessage | RejectedMessage:
    """Anything other than a BotMessage or a RejectedMessage escapes and fails the test."""
    try:
        return parse_bot_message(raw)
    except RejectedMessage as rejected:
        return rejected


@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 64))
def test_arbitrary_bytes_are_parsed_or_rejected(raw: bytes) -> None:
    outcome = parse_or_reject(raw)
    if isinstance(outcome, RejectedMessage):
        assert outcome.reason in REJECT_REASONS
    else:
        assert outcome.type in {"ping", "pong"}


@given(st.text().map(lambda text: text.encode("utf-8", "surrogatepass")))
def test_arbitrary_text_is_parsed_or_rejected(raw: bytes) -> None:
    outcome = parse_or_reject(raw)
    assert isinstance(outcome, BotMessage | RejectedMessage)
    if isinstance(outcome, RejectedMessage):
        assert outcome.reason in REJECT_REASONS


# Only what orjson can both write and read back unchanged: finite floats, 64-bit ints,
# strings without lone surrogates.
json_text = st.text(st.characters(codec="utf-8"), max_size=20)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5)
    ),
    max_leaves=25,
)
RESERVED = {"type", "latency", "timestamp", "source"}


@st.composite
def valid_bot_objects(draw: st.DrawFn) -> dict[str, Any]:
    bot: dict[str, Any] = {"type": draw(st.sampled_from(["ping", "pong"]))}
    optional = {
        "latency": st.none()
        | st.integers(min_value=0, max_value=MAX_LATENCY_MS)
        | st.floats(min_value=0, max_value=MAX_LATENCY_MS),
        "timestamp": st.none()
        | st.integers(min_value=0, max_value=MAX_TIMESTAMP_MS)
        | st.floats(min_value=0, max_value=MAX_TIMESTAMP_MS),
        "source": st.none() | st.from_regex(r"[A-Za-z0-9_.:@/+-]{1,128}", fullmatch=True),
    }
    for key, values in optional.items():
        if draw(st.booleans()):
            bot[key] = draw(values)
    extras = draw(
        st.dictionaries(
            json_text.filter(lambda key: key not in RESERVED),
            json_values.filter(lambda value: depth_of(value) < MAX_DEPTH),
            max_size=6,
        )
    )
    bot.update(extras)
    # Key order is the bot's; shuffle it so "type" is not always first.
    items = draw(st.permutations(list(bot.items())))
    return dict(items)


@given(valid_bot_objects(), st.booleans(), st.integers(min_value=0, max_value=2**63 - 1))
def test_valid_messages_reach_the_envelope_unchanged(
    bot: dict[str, Any], indent: bool, relay_ms: int
) -> None:
    raw = orjson.dumps(bot, option=orjson.OPT_INDENT_2 if indent else 0)
    message = parse_bot_message(raw, max_bytes=len(raw))
    assert message.fields == bot
    envelope = orjson.loads(encode_envelope(message, relay_ms))
    assert list(envelope) == ENVELOPE_KEYS
    assert envelope["data"] == bot
    assert list(envelope["data"]) == list(bot)
    assert envelope["timestamp"] == relay_ms
    assert (envelope["type"], envelope["source"]) == ("bot:pingpong", "bot")


@given(
    st.dictionaries(st.sampled_from(sorted(RESERVED)) | json_text, json_values, max_size=6).map(
        orjson.dumps
    )
)
def test_any_json_object_is_parsed_or_rejected(raw: bytes) -> None:
    # Fields of any JSON type in any of the schema's slots: validation must refuse them
    # with a reason, never crash (a crash would end the relay's Redis subscription).
    outcome = parse_or_reject(raw)
    assert isinstance(outcome, BotMessage | RejectedMessage)


@given(st.binary(max_size=4096), st.integers(min_value=0, max_value=512))
def test_excerpt_is_always_ascii_and_bounded(raw: bytes, limit: int) -> None:
    text = excerpt(raw, limit)
    assert text.isascii()
    marker = f"... ({len(raw)} bytes)"
    # At most `limit` characters of the payload itself, escapes included.
    assert len(text) <= limit + len(marker)
    if len(raw) > limit:
        assert text.endswith(marker)
    if not text.endswith(marker):
        escaped = raw.decode("utf-8", "backslashreplace").encode("unicode_escape")
        assert text == escaped.decode("ascii")


@given(st.binary(max_size=MAX_PAYLOAD_BYTES + 64))
def test_rejected_excerpt_is_always_ascii_and_bounded(raw: bytes) -> None:
    outcome = parse_or_reject(raw)
    if isinstance(outcome, RejectedMessage):
        assert outcome.excerpt.isascii()
        assert len(outcome.excerpt) <= excerpt_bound(raw)


# Trees of any shape with strings full of brackets, quotes and backslashes, wrapped in a
# chain of arrays and objects long enough to cross MAX_DEPTH either way.
_bracket_text = st.text(st.sampled_from('[]{}"\\ax,:'), max_size=12)
_trees = st.recursive(
    st.none() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | _bracket_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_bracket_text, children, max_size=4)
    ),
    max_leaves=30,
)


@st.composite
def nested_values(draw: st.DrawFn) -> Any:
    value = draw(_trees)
    for _ in range(draw(st.integers(min_value=0, max_value=MAX_DEPTH + 8))):
        if draw(st.booleans()):
            value = {draw(_bracket_text): value}
        else:
            value = [value, draw(_bracket_text)]
    return value


@given(nested_values(), st.booleans())
def test_nesting_check_agrees_with_the_definition(value: Any, indent: bool) -> None:
    raw = orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0)
    assert nesting_depth_exceeds(raw) == (depth_of(value) > MAX_DEPTH)
    outcome = parse_or_reject(b'{"type":"ping","x":' + raw + b"}")
    too_deep = isinstance(outcome, RejectedMessage) and outcome.reason == "too_deep"
    assert too_deep == (1 + depth_of(value) > MAX_DEPTH)
