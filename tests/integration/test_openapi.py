"""The HTTP plane's contract on a live relay: the document it serves is its own settings'
and valid; a request the document refuses is a 400 naming the parameter, counted and
logged once, and the relay goes on answering; every other error is in the same JSON shape."""

from __future__ import annotations

from typing import Any, cast

import aiohttp
import orjson
from openapi_spec_validator import validate

from pingpong_relay.http.openapi import openapi_document
from tests.integration.http_support import JWT, SECRET, raw_exchange, status_of
from tests.support import RedisServer, RelayFactory


async def test_the_served_document_is_valid_and_describes_this_relays_auth(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    anonymous = await start_relay(redis_server.url)
    status, body = await anonymous.get("/openapi.json")
    assert status == 200
    served = orjson.loads(body)
    validate(cast(Any, served))
    assert served == openapi_document(auth=False, operator_credential=False)
    assert served["paths"]["/bots"]["get"]["security"] == []

    guarded = await start_relay(redis_server.url, *JWT, env={"PINGPONG_JWT_SECRET": SECRET})
    status, body = await guarded.get("/openapi.json")  # no token: the contract is public
    assert status == 200
    served = orjson.loads(body)
    assert served == openapi_document(auth=True, operator_credential=False)
    assert {"bearerJwt": ["status"]} in served["paths"]["/bots"]["get"]["security"]
    assert "401" in served["paths"]["/bots"]["get"]["responses"]


async def test_a_request_the_document_refuses_is_a_400_naming_the_parameter(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    cases = [
        ("/stats?window=1d", "bad_window", "window"),
        ("/history?limit=10001", "bad_limit", "limit"),
        ("/history?after=yesterday", "bad_position", "after"),
        ("/history?limit=5&limit=6", "bad_limit", "limit"),
        ("/history?format=xml", "bad_parameter", "format"),
        ("/analytics?window=24h", "bot_required", "bot"),
        ("/healthz?detail=maybe", "bad_parameter", "detail"),
        ("/badge.svg?bot=" + "b" * 400, "bot_required", "bot"),
    ]
    for path, code, parameter in cases:
        status, body = await relay.get(path)
        refused = orjson.loads(body)
        assert status == 400, path
        assert (refused["error"], refused["parameter"]) == (code, parameter), path
        assert parameter in refused["message"], path
    logged = await relay.wait_for("http_refused")
    assert (logged["reason"], logged["count"]) == ("bad_parameter", 1)
    assert "window" in logged["detail"]
    assert await relay.metric('pingpong_http_refused_total{reason="bad_parameter"}') == len(cases)
    # A parameter the document does not name is ignored; the relay goes on answering.
    status, body = await relay.get("/stats?window=1m&_=1733450000")
    assert status == 200
    assert orjson.loads(body)["window"] == "1m"


async def test_a_wrong_body_names_its_field(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    async with aiohttp.ClientSession() as session:
        for body, field in (
            ({"bots": ["gate-*"], "duration": "2h", "reason": "x"}, "reason"),
            ({"bots": [], "duration": "2h"}, "bots"),
            ({"bots": "gate-*", "duration": {"hours": 2}}, "duration"),
            ({"bots": "gate-*", "duration": "2h", "comment": "c" * 1001}, "comment"),
        ):
            async with session.post(f"{relay.http_url}/api/mutes", json=body) as response:
                refused = await response.json()
                assert response.status == 400, body
                assert (refused["error"], refused["field"]) == ("bad_mute", field), refused
        async with session.post(
            f"{relay.http_url}/api/mutes", json={"bots": "gate-*", "duration": "2h"}
        ) as response:
            assert response.status == 201


async def test_no_route_a_wrong_method_and_junk_answer_in_the_json_error_shape(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{relay.http_url}/nowhere") as response:
            assert response.status == 404
            assert (await response.json())["error"] == "not_found"
        async with session.delete(f"{relay.http_url}/stats") as response:
            assert response.status == 405
            assert response.headers["Allow"] == "GET,HEAD"
            assert (await response.json())["error"] == "method_not_allowed"
        async with session.get(f"{relay.http_url}/dashboard/dashboard.js") as response:
            assert response.status == 200
            assert response.content_type == "application/javascript"
        async with session.get(f"{relay.http_url}/stats?q={'x' * 9000}") as response:
            assert response.status == 400
            assert response.content_type == "application/json"
            assert (await response.json())["error"] == "bad_request"
    # Nothing outside the dashboard's folder, however the path is spelt.
    for path in ("/dashboard/../app.py", "/dashboard/%2e%2e/app.py", "/dashboard/..%2fapp.py"):
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        answer = await raw_exchange(relay.http_port, request.encode())
        assert status_of(answer) == 404, path
        assert b'"error":"not_found"' in answer, path
        assert b"build_app" not in answer, path
