"""The HTTP plane's contract: the OpenAPI document is valid, published as it is generated,
matches the router one to one, and the checker built from the same schemas refuses what the
document refuses with a 400 body naming the parameter."""

from __future__ import annotations

from typing import Any, cast

import fastjsonschema
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from multidict import MultiDict
from openapi_spec_validator import validate
from scripts.update_docs import OPENAPI

from pingpong_relay.http.app import build_app
from pingpong_relay.http.contract import (
    ERROR_SCHEMA,
    ContractError,
    Operation,
    check_body,
    check_query,
)
from pingpong_relay.http.openapi import openapi_document, openapi_json
from pingpong_relay.http.operations import OPERATIONS, answers, operation_for
from pingpong_relay.monitor import Monitor

_CONFIGS = [(True, True), (True, False), (False, True), (False, False)]


@pytest.mark.parametrize(("auth", "operator"), _CONFIGS)
def test_the_document_is_valid_openapi_3_1_in_every_configuration(
    auth: bool, operator: bool
) -> None:
    document = openapi_document(auth=auth, operator_credential=operator)
    validate(cast(Any, document))
    assert document["openapi"] == "3.1.0"
    assert sum(len(methods) for methods in document["paths"].values()) == len(OPERATIONS)


def test_the_published_document_is_the_generated_one() -> None:
    assert OPENAPI.read_text(encoding="utf-8") == openapi_json(), (
        "docs/openapi.json is stale; run `make docs`"
    )


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # aiohttp adds one for every GET
        resource = route.resource
        assert resource is not None
        found.add((route.method, resource.canonical))
    return found


async def _health() -> tuple[bool, dict[str, Any]]:
    return True, {}


async def _metrics() -> bytes:
    return b""


def test_every_route_of_the_app_has_exactly_one_operation_and_no_more() -> None:
    app = build_app(_health, _metrics, cast(Monitor, object()))
    operations = {(op.method, op.path) for op in OPERATIONS}
    assert _routes(app) == operations
    assert len(operations) == len(OPERATIONS)
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


def test_head_is_checked_as_get_and_unknown_routes_have_no_operation() -> None:
    assert operation_for("HEAD", "/stats") is operation_for("GET", "/stats") is not None
    assert operation_for("GET", "/nowhere") is None
    assert operation_for("PUT", "/stats") is None


@pytest.mark.parametrize(("auth", "operator"), _CONFIGS)
def test_who_may_call_what_is_in_the_document(auth: bool, operator: bool) -> None:
    document = openapi_document(auth=auth, operator_credential=operator)
    for op in OPERATIONS:
        spec = document["paths"][op.path][op.method.lower()]
        codes = set(spec["responses"])
        assert "421" in codes, op.operation_id  # the Host check is on every route
        if op.guard == "open" or op.guard == "push":
            assert spec["security"] == [], op.operation_id
        if op.guard == "data":
            assert ("401" in codes) is auth, op.operation_id
            assert ("403" in codes) is auth, op.operation_id
            roles = {tuple(v) for alternative in spec["security"] for v in alternative.values()}
            assert roles == ({(op.scope,)} if auth else set()), op.operation_id
        if op.guard == "badge" and auth:
            assert {} in spec["security"], "a public bot's badge needs no token"
        if op.guard == "operator":
            assert ("401" in codes) is (auth or operator)
        if op.params or op.body:
            assert "400" in codes, op.operation_id
    mutes = document["paths"]["/api/mutes"]["post"]["security"]
    assert mutes == ([{"bearerJwt": ["mute"]}, {"queryJwt": ["mute"]}] if auth else [])


def test_every_json_answer_has_a_schema_that_compiles() -> None:
    document = openapi_document()
    components = document["components"]["schemas"]
    for op in OPERATIONS:
        for status, answer in answers(op, auth=True, operator_credential=True).items():
            for media, schema in answer.content.items():
                if media == "application/json":
                    assert schema is not None, (op.operation_id, status)
                    resolved = {**schema, "$defs": components}
                    fastjsonschema.compile(_local(resolved))


def _local(schema: Any) -> Any:
    """The component references rewritten to $defs, for a standalone compile."""
    if isinstance(schema, dict):
        return {
            k: (v.replace("#/components/schemas/", "#/$defs/") if k == "$ref" else _local(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_local(v) for v in schema]
    return schema


# --- the checker ------------------------------------------------------------------------
def _op(method: str, path: str) -> Operation:
    found = operation_for(method, path)
    assert found is not None
    return found


_STATS = _op("GET", "/stats")
_HISTORY = _op("GET", "/history")
_ANALYTICS = _op("GET", "/analytics")
_MUTE = _op("POST", "/api/mutes")
_PING = _op("GET", "/ping/{token}/{signal}")


def _check(op: Any, query: dict[str, str], path: dict[str, str] | None = None) -> dict[str, Any]:
    return check_query(op, MultiDict(query), path or {}, set())


def _refused(op: Any, query: dict[str, str], path: dict[str, str] | None = None) -> ContractError:
    with pytest.raises(ContractError) as caught:
        _check(op, query, path)
    return caught.value


def test_defaults_come_from_the_schema_and_numbers_are_read_as_numbers() -> None:
    assert _check(_STATS, {}) == {"window": "5m"}
    assert _check(_HISTORY, {"limit": "7", "since": "5"}) == {
        "limit": 7,
        "since": "5",
        "format": "json",
    }
    assert _check(_ANALYTICS, {"bot": "b"}) == {"bot": "b", "window": "24h"}


@pytest.mark.parametrize(
    ("op", "query", "code", "name", "message"),
    [
        (_STATS, {"window": "2m"}, "bad_window", "window", "window must be one of 1m, 5m, 15m, 1h"),
        (_HISTORY, {"limit": "0"}, "bad_limit", "limit", "from 1 to 10000"),
        (_HISTORY, {"limit": "10001"}, "bad_limit", "limit", "from 1 to 10000"),
        (_HISTORY, {"limit": "1.5"}, "bad_limit", "limit", "whole number"),
        (_HISTORY, {"limit": "9" * 30}, "bad_limit", "limit", "whole number"),
        (_HISTORY, {"since": "yesterday"}, "bad_position", "since", "a history id"),
        (_HISTORY, {"after": "1-2-3"}, "bad_position", "after", "a history id"),
        (_HISTORY, {"format": "xml"}, "bad_parameter", "format", "json, csv"),
        (_ANALYTICS, {}, "bot_required", "bot", "bot is required"),
        (_ANALYTICS, {"bot": ""}, "bot_required", "bot", "1 to 329 characters"),
        (_ANALYTICS, {"bot": "b" * 330}, "bot_required", "bot", "1 to 329 characters"),
        (_STATS, {"bot": "x", "window": "1d"}, "bad_window", "window", "one of"),
    ],
)
def test_a_parameter_the_contract_refuses_is_named_with_its_code(
    op: Any, query: dict[str, str], code: str, name: str, message: str
) -> None:
    refused = _refused(op, query)
    assert (refused.code, refused.name) == (code, name)
    assert message in refused.message
    body = refused.body()
    assert body["parameter"] == name
    fastjsonschema.validate(ERROR_SCHEMA, body)


def test_a_path_parameter_is_checked_too_with_ascii_digits_only() -> None:
    token = {"token": "t" * 20}
    assert _check(_PING, {}, {**token, "signal": "255"})["signal"] == "255"
    refused = _refused(_PING, {}, {**token, "signal": "²"})
    assert (refused.code, refused.name) == ("malformed", "signal")
    refused = _refused(_PING, {}, {"token": "short", "signal": "0"})
    assert refused.name == "token"


def test_a_declared_parameter_given_twice_is_refused_and_undeclared_ones_are_ignored() -> None:
    with pytest.raises(ContractError, match="more than once"):
        check_query(_STATS, MultiDict([("window", "1m"), ("window", "5m")]), {}, {"window"})
    assert _check(_STATS, {"token": "x", "_": "123"}) == {"window": "5m"}


@given(
    st.dictionaries(
        st.sampled_from(["bot", "since", "until", "after", "limit", "format"]), st.text(max_size=40)
    )
)
def test_any_text_is_either_taken_or_refused_by_name(query: dict[str, str]) -> None:
    try:
        found = _check(_HISTORY, query)
    except ContractError as refused:
        named = refused.name
    else:
        assert 1 <= found["limit"] <= 10_000
        assert found["format"] in ("json", "csv")
        return
    assert named in query


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "body", "body: must be a JSON object"),
        ({}, "bots", "bots: is required"),
        ({"bots": [""]}, "bots", "bots: must be bot ids or shell-style patterns, at most 100"),
        ({"bots": "b", "rules": [1]}, "rules", "rules: must be rule names or patterns"),
        ({"bots": "b", "reason": "x"}, "reason", "reason: is not a field (known: bots,"),
        ({"bots": "b", "comment": "x" * 1001}, "comment", "comment: must be shorter than or"),
        ({"bots": "b", "duration": True}, "duration", "duration: must be string or number"),
        ({"bots": "b", "ends_at": -1}, "ends_at", "ends_at: must be bigger than or equal to 0"),
    ],
)
def test_a_body_the_schema_refuses_names_the_field(body: Any, field: str, message: str) -> None:
    with pytest.raises(ContractError) as caught:
        check_body(_MUTE, body)
    refused = caught.value
    assert (refused.code, refused.name, refused.in_body) == ("bad_mute", field, True)
    assert message in refused.message
    assert refused.body()["field"] == field


def test_a_body_the_schema_takes_passes() -> None:
    check_body(_MUTE, {"bots": ["gate-*"], "rules": "silence", "duration": "2h", "comment": ""})
    check_body(_MUTE, {"bots": "b", "starts_at": "2026-12-06T02:00Z", "ends_at": 1.8e12})
