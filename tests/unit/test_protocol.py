"""The AsyncAPI document: valid AsyncAPI 3, its schemas the very ones the relay validates with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pingpong_relay import messages, subscriptions
from pingpong_relay.asyncapi import SENT, asyncapi
from pingpong_relay.codes import CloseCode
from pingpong_relay.messages import RejectedMessage, parse_bot_message
from pingpong_relay.status_codes import CLOSE_CODES
from pingpong_relay.subscriptions import CommandError, parse_command, parse_connect_query
from tests.support import ROOT

SPEC = ROOT / "tests/asyncapi/node_modules/@asyncapi/specs/schemas/3.0.0-without-$id.json"


def _document() -> dict[str, Any]:
    """The document as a client reads it: through JSON."""
    parsed: dict[str, Any] = orjson.loads(orjson.dumps(asyncapi()))
    return parsed


def test_the_document_is_valid_asyncapi_3() -> None:
    assert SPEC.exists(), "run `make test` (it installs @asyncapi/specs from npm)"
    spec = orjson.loads(SPEC.read_bytes())
    errors = list(jsonschema.Draft7Validator(spec).iter_errors(_document()))
    assert errors == []


def test_an_invalid_document_is_caught_by_that_check() -> None:
    spec = orjson.loads(SPEC.read_bytes())
    broken = _document()
    broken["operations"]["receiveHeartbeats"]["action"] = "publish"  # AsyncAPI 2 wording
    assert list(jsonschema.Draft7Validator(spec).iter_errors(broken))


def test_the_published_schemas_are_the_objects_the_relay_validates_with() -> None:
    document = asyncapi()
    schemas = document["components"]["schemas"]
    assert schemas["BotMessage"] is messages.BOT_MESSAGE_SCHEMA
    assert schemas["Command"] is subscriptions.COMMAND_SCHEMA
    assert schemas["ConnectQuery"] is subscriptions.CONNECT_QUERY_SCHEMA
    assert document["channels"]["clients"]["bindings"]["ws"]["query"] is (
        subscriptions.CONNECT_QUERY_SCHEMA
    )
    assert schemas["Envelope"]["properties"]["data"] is messages.BOT_MESSAGE_SCHEMA


def test_every_reference_resolves_and_every_example_is_valid() -> None:
    document = _document()

    def resolve(ref: str) -> Any:
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for message in document["components"]["messages"].values():
        schema = resolve(message["payload"]["$ref"])
        for example in message.get("examples", []):
            jsonschema.Draft7Validator(schema).validate(example["payload"])


def test_every_message_the_relay_sends_is_in_the_document() -> None:
    document = _document()
    channel = document["channels"]["clients"]["messages"]
    named = {ref["$ref"].rsplit("/", 1)[1] for ref in channel.values()}
    assert named == {"Command", *SENT}
    assert set(SENT) <= set(document["components"]["schemas"])


def test_the_close_codes_the_relay_uses_are_documented() -> None:
    documented = {code.code for code in CLOSE_CODES}
    # Every code the relay can close with is documented, and nothing else is.
    assert documented == set(CloseCode)


# --- the relay accepts exactly what the schema accepts (jsonschema as the reference) ------
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
# Values at and around the schema's bounds, and bot ids that look right but are not.
_edges = st.sampled_from(
    [
        0,
        -0.0,
        -1e-9,
        3_600_000,
        3_600_000.0001,
        10**13,
        10**13 + 1,
        1234567890,
        "bot",
        "gate-1",
        "freqtrade.binance",
        "user@host",
        "bot\n",
        "a b",
        "b\u00f8t",
        "x" * 128,
        "x" * 129,
        "",
    ]
)
_bot_messages = (
    st.dictionaries(
        st.sampled_from(["type", "latency", "timestamp", "source", "other"]),
        st.sampled_from(["ping", "pong", "pang", ""]) | _edges | _json,
        max_size=5,
    )
    | _json
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _accepts(parse: Callable[[Any], object], refusal: type[Exception], value: Any) -> bool:
    try:
        parse(value)
    except refusal:
        return False
    return True


@settings(max_examples=400)
@given(body=_bot_messages)
def test_bot_messages_accepted_exactly_when_the_schema_says(body: Any) -> None:
    # The nesting limit is checked around the schema, as the schema's description says.
    reference = jsonschema.Draft7Validator(messages.BOT_MESSAGE_SCHEMA).is_valid(body) and (
        _depth(body) <= messages.MAX_DEPTH
    )
    assert _accepts(parse_bot_message, RejectedMessage, orjson.dumps(body)) == reference


_names = st.sampled_from(["ping", "pong", " ping", "status", "relay", "", "x", "ping,pong", "a,"])
_commands = (
    st.dictionaries(
        st.sampled_from(["action", "types", "bots", "events", "id", "token", "other"]),
        st.sampled_from([*subscriptions.ACTIONS, "nope"])
        | st.lists(_names, max_size=3)
        | _names
        | _json,
        max_size=4,
    )
    | _json
)


@settings(max_examples=600)
@given(body=_commands)
def test_commands_accepted_exactly_when_the_schema_says(body: Any) -> None:
    reference = jsonschema.Draft7Validator(subscriptions.COMMAND_SCHEMA).is_valid(body)
    assert _accepts(parse_command, CommandError, orjson.dumps(body)) == reference


_query_values = st.sampled_from(
    [
        "ping",
        "pong,ping",
        "status, alerts",
        "x",
        "",
        "0",
        "5",
        "10000",
        "10001",
        "17-3",
        "a*,b",
        " ",
    ]
)


@settings(max_examples=400)
@given(
    params=st.dictionaries(
        st.sampled_from(["types", "bots", "events", "since", "last", "ids", "token", "cache"]),
        _query_values,
        max_size=4,
    )
)
def test_connect_queries_accepted_exactly_when_the_schema_says(params: dict[str, str]) -> None:
    reference = jsonschema.Draft7Validator(subscriptions.CONNECT_QUERY_SCHEMA).is_valid(params)
    accepted = _accepts(parse_connect_query, CommandError, urlencode(params))
    assert accepted == reference or not params  # an empty query is the default subscription


@pytest.mark.parametrize(
    ("raw", "reason", "fragment"),
    [
        (b"[1]", "not_object", "got list"),
        (b"{}", "bad_type", '"type" is required'),
        (b'{"type":"pang"}', "bad_type", '"ping" or "pong", got \'pang\''),
        (b'{"type":"ping","latency":-1}', "bad_latency", "a number >= 0 and <= 3,600,000, got -1"),
        (b'{"type":"ping","latency":true}', "bad_latency", "got True"),
        (
            b'{"type":"ping","timestamp":"x"}',
            "bad_timestamp",
            "a number >= 0 and <= 10,000,000,000,000, got 'x'",
        ),
        (b'{"type":"ping","source":"bot\\n"}', "bad_source", "got 'bot\\n'"),
        (
            b'{"type":"ping","source":5}',
            "bad_source",
            "a string of 1-128 characters of A-Z a-z 0-9 _ . : @ / + -, got 5",
        ),
    ],
)
def test_schema_failures_keep_their_reasons_and_say_what_was_expected(
    raw: bytes, reason: str, fragment: str
) -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_bot_message(raw)
    assert caught.value.reason == reason
    assert fragment in caught.value.detail
