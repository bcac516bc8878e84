"""JWT auth over real handshakes: who gets in, what they see, and when they are shown out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson
import pytest

from pingpong_relay.auth import SUBPROTOCOL, mint
from tests.support import (
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    publish_established,
)

SECRET = "relay-test-secret-" + "k" * 50
AUTH = (
    "--auth",
    "jwt",
    "--jwt-audience",
    "relay",
    "--jwt-issuer",
    "ops",
    "--metrics-token",
    "scrape-me",
)


def _token(**overrides: Any) -> str:
    now = time.time()
    claims: dict[str, Any] = {
        "sub": "dash",
        "aud": "relay",
        "iss": "ops",
        "exp": int(now + 600),
        **overrides,
    }
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.fixture
async def guarded(redis_server: RedisServer, start_relay: RelayFactory) -> RelayProcess:
    relay = await start_relay(
        redis_server.url, *AUTH, "--silence-timeout", "60", env={"PINGPONG_JWT_SECRET": SECRET}
    )
    relay.http_headers = {"Authorization": "Bearer scrape-me"}
    return relay


CASES: list[tuple[str, dict[str, str], str, int, str | None]] = [
    ("valid header", {"Authorization": f"Bearer {_token()}"}, "", 101, None),
    ("valid query", {}, f"?token={_token()}", 101, None),
    (
        "valid subprotocol",
        {"Sec-WebSocket-Protocol": f"{SUBPROTOCOL}, bearer.{_token()}"},
        "",
        101,
        None,
    ),
    ("missing", {}, "", 401, "missing"),
    ("garbage", {"Authorization": "Bearer not-a-jwt"}, "", 401, "malformed"),
    (
        "expired",
        {"Authorization": f"Bearer {_token(exp=int(time.time()) - 60)}"},
        "",
        401,
        "expired",
    ),
    (
        "nbf in future",
        {"Authorization": f"Bearer {_token(nbf=int(time.time()) + 600)}"},
        "",
        401,
        "not_yet_valid",
    ),
    (
        "wrong key",
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": "x", "aud": "relay", "iss": "ops", "exp": int(time.time()) + 600},
                "another-secret-" + "z" * 60,
                algorithm="HS256",
            )
        },
        "",
        401,
        "bad_signature",
    ),
    (
        "alg none",
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": "x", "aud": "relay", "iss": "ops", "exp": int(time.time()) + 600},
                None,  # type: ignore[arg-type]  # PyJWT's stubs want a key even for "none"
                algorithm="none",
            )
        },
        "",
        401,
        "bad_algorithm",
    ),
    (
        "wrong audience",
        {"Authorization": f"Bearer {_token(aud='elsewhere')}"},
        "",
        401,
        "bad_audience",
    ),
    ("wrong issuer", {"Authorization": f"Bearer {_token(iss='mallory')}"}, "", 401, "bad_issuer"),
    ("basic auth", {"Authorization": "Basic dXNlcjpwYXNz"}, "", 401, "malformed"),
    (
        "expired in query",
        {},
        f"?types=ping&token={_token(exp=int(time.time()) - 60)}",
        401,
        "expired",
    ),
]


@pytest.mark.parametrize(
    ("name", "headers", "query", "status", "reason"), CASES, ids=[c[0] for c in CASES]
)
async def test_every_token_case_over_a_real_handshake(
    guarded: RelayProcess,
    name: str,
    headers: dict[str, str],
    query: str,
    status: int,
    reason: str | None,
) -> None:
    async with aiohttp.ClientSession() as session:
        if status == 101:
            protocols: tuple[str, ...] = (
                (SUBPROTOCOL,) if "Sec-WebSocket-Protocol" in headers else ()
            )
            extra = {k: v for k, v in headers.items() if k != "Sec-WebSocket-Protocol"}
            if protocols:
                protocols = (SUBPROTOCOL, headers["Sec-WebSocket-Protocol"].split(", ")[1])
            async with session.ws_connect(
                guarded.ws_url + query, headers=extra, protocols=protocols
            ) as ws:
                assert not ws.closed
                if protocols:
                    assert ws.protocol == SUBPROTOCOL
            return
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(guarded.ws_url + query, headers=headers)
        assert refused.value.status == status
    logged = await guarded.wait_for("auth_refused")
    assert logged["reason"] == reason
    assert logged["count"] == 1
    # Where it came from and what it asked for, with any token replaced.
    path = "/?types=ping&token=***" if query else "/"
    assert logged["detail"].endswith(f" {path} from 127.0.0.1")
    assert await guarded.metric(f'pingpong_auth_failures_total{{reason="{reason}"}}') == 1
    presented = [v.split(" ")[-1] for v in headers.values()] + query.split("token=")[1:]
    for line in guarded.raw_lines:  # the reason is logged, never the token
        for token in presented:
            if len(token) > 30:
                assert token not in line


async def test_a_scoped_client_never_sees_another_bots_data(
    redis_server: RedisServer, guarded: RelayProcess
) -> None:
    scoped = Collector()
    token = _token(bots=["bot:pingpong/alpha"])
    await scoped.connect(guarded.ws_url + f"?token={token}&events=pingpong,status,alerts,stats")
    assert scoped.ws is not None
    # Asking for everything changes nothing: filters are intersected with the scope.
    await scoped.ws.send_str('{"action":"subscribe","bots":["*"],"types":["ping","pong"]}')
    await scoped.wait_count(1)
    for n, source in enumerate(("beta", "alpha", "beta", "alpha"), start=1):
        await redis_server.publish(orjson.dumps({"type": "ping", "latency": n, "source": source}))
    # The last alpha message comes after everything beta caused (its pingpongs and its
    # status change), so once it is here anything misrouted would be here too.
    index = 1
    while True:
        message = (await scoped.wait_count(index + 1))[index]
        if message["type"] == "bot:pingpong" and message["data"]["latency"] == 4:
            break
        index += 1
    seen = {m.get("bot") or "bot:pingpong/" + m["data"]["source"] for m in scoped.messages[1:]}
    assert seen == {"bot:pingpong/alpha"}
    assert [m["data"]["latency"] for m in scoped.messages if m["type"] == "bot:pingpong"] == [2, 4]

    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{guarded.http_url}/bots") as response:
            assert set((await response.json())["bots"]) == {"bot:pingpong/alpha"}
        async with session.get(f"{guarded.http_url}/stats?window=1m&bot=bot:pingpong/beta") as r:
            assert r.status == 404
        async with session.get(f"{guarded.http_url}/history?limit=100") as response:
            items = (await response.json())["items"]
            assert {i["bot"] for i in items} <= {"bot:pingpong/alpha"}
    await scoped.close()


async def test_http_data_needs_a_token_and_metrics_its_own(guarded: RelayProcess) -> None:
    guarded.http_headers = {}
    status, body = await guarded.get("/stats")
    assert status == 401
    assert orjson.loads(body)["reason"] == "missing"
    status, _ = await guarded.get("/healthz")
    assert status == 200
    status, _ = await guarded.get("/metrics")
    assert status == 401
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"{guarded.http_url}/metrics", headers={"Authorization": "Bearer scrape-me"}
        ) as response:
            assert response.status == 200
        only_status = _token(events=["status"])
        async with session.get(
            f"{guarded.http_url}/stats", headers={"Authorization": f"Bearer {only_status}"}
        ) as response:
            assert response.status == 403
        async with session.get(
            f"{guarded.http_url}/bots", headers={"Authorization": f"Bearer {only_status}"}
        ) as response:
            assert response.status == 200


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


async def test_refusals_have_one_body_shape_on_both_planes_and_are_logged_with_where_from(
    guarded: RelayProcess,
) -> None:
    guarded.http_headers = {}
    expired = {"Authorization": f"Bearer {_token(exp=int(time.time()) - 60)}"}
    for headers, reason in (({}, "missing"), (expired, "expired")):
        ws_status, ws_body = await guarded.get("/", data_port=True, headers=UPGRADE | headers)
        http_status, http_body = await guarded.get("/stats", headers=headers)
        assert ws_status == http_status == 401
        # The same keys and codes for the same reason, whichever port refused it.
        assert orjson.loads(ws_body) == orjson.loads(http_body)
        assert list(orjson.loads(http_body)) == ["error", "reason", "message"]
        assert orjson.loads(http_body)["error"] == "unauthorized"
        assert orjson.loads(http_body)["reason"] == reason
    # The operator's credential: the same shape, with its own reasons.
    for headers, reason in (({}, "missing"), ({"Authorization": "Bearer nope"}, "wrong_token")):
        status, body = await guarded.get("/metrics", headers=headers)
        assert status == 401
        assert orjson.loads(body) == {
            "error": "unauthorized",
            "reason": reason,
            "message": "needs the --metrics-token bearer token or a token with the metrics scope",
        }
    only_status = {"Authorization": f"Bearer {_token(events=['status'])}"}
    status, body = await guarded.get("/stats", headers=only_status)
    assert status == 403
    assert orjson.loads(body) == {
        "error": "forbidden",
        "message": "the token does not grant 'stats'",
    }

    # Each refusal logged once (then at most once per 10 s per kind, with how many), with
    # the path it asked for and the address it came from; counted on the HTTP plane.
    def http_refused(reason: str) -> Callable[[dict[str, Any]], bool]:
        return lambda r: r.get("event") == "http_refused" and r.get("reason") == reason

    unauthorized = await guarded.wait_for(http_refused("unauthorized"))
    assert unauthorized["count"] == 1
    assert unauthorized["detail"] == "missing: GET /stats from 127.0.0.1"
    forbidden = await guarded.wait_for(http_refused("forbidden"))
    assert forbidden["detail"] == "GET /stats from 127.0.0.1"
    websocket = await guarded.wait_for("auth_refused")
    assert websocket["detail"] == "missing: GET / from 127.0.0.1"
    guarded.http_headers = {"Authorization": "Bearer scrape-me"}
    assert await guarded.metric('pingpong_http_refused_total{reason="unauthorized"}') == 4
    assert await guarded.metric('pingpong_http_refused_total{reason="forbidden"}') == 1


async def test_a_token_that_expires_while_connected_closes_the_client_with_4003(
    guarded: RelayProcess,
) -> None:
    client = Collector()
    await client.connect(guarded.ws_url + f"?token={_token(exp=int(time.time()) + 2)}")
    await asyncio.wait_for(client.closed.wait(), 15)
    assert client.close_code == 4003


async def test_minted_tokens_work_and_bad_auth_settings_stop_serve(
    guarded: RelayProcess,
) -> None:
    token = mint(SECRET, "cli", now_s=time.time(), ttl_s=60, audience="relay", issuer="ops")
    client = Collector()
    await client.connect(guarded.ws_url + f"?token={token}")
    assert client.ws is not None
    assert not client.ws.closed
    await client.close()
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingpong_relay",
        "serve",
        "--auth",
        "jwt",
        "--jwt-secret",
        "short",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"--jwt-secret must be at least 32 characters" in err


async def test_jwks_keys_are_fetched_and_rotated_keys_picked_up(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.support import free_port

    def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
        body = orjson.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        return {**body, "kid": kid, "alg": "RS256", "use": "sig"}

    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    published = {"keys": [jwk(first, "k1")]}

    async def serve_jwks(_request: web.Request) -> web.Response:
        return web.json_response(published)

    app = web.Application()
    app.router.add_get("/jwks.json", serve_jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        relay = await start_relay(
            redis_server.url, "--auth", "jwt", "--jwks-url", f"http://127.0.0.1:{port}/jwks.json"
        )
        await relay.wait_for("jwks_loaded")
        claims = {"sub": "svc", "exp": int(time.time()) + 600}
        good = jwt.encode(claims, first, algorithm="RS256", headers={"kid": "k1"})
        client = Collector()
        await client.connect(relay.ws_url + f"?token={good}")
        await client.close()

        # The issuer rotates to a new key: the first token naming it is refused and asks
        # for a refresh; once fetched, tokens with the new key are accepted.
        published["keys"].append(jwk(second, "k2"))
        rotated = jwt.encode(claims, second, algorithm="RS256", headers={"kid": "k2"})
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(relay.ws_url + f"?token={rotated}")
            assert refused.value.status == 401
        await relay.wait_for("jwks_loaded", count=2)
        client = Collector()
        await client.connect(relay.ws_url + f"?token={rotated}")
        assert client.ws is not None
        assert not client.ws.closed
        await client.close()
        assert (await relay.wait_for("auth_refused"))["reason"] == "unknown_key"
    finally:
        await runner.cleanup()


async def test_a_scoped_client_gets_no_other_bots_alerts_or_statistics(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--auth",
        "jwt",
        "--stats-interval",
        "0.2",
        "--latency-threshold",
        "10",
        "--latency-for",
        "0",
        "--silence-timeout",
        "60",
        env={"PINGPONG_JWT_SECRET": SECRET},
    )
    token = jwt.encode(
        {"sub": "a", "exp": int(time.time()) + 600, "bots": ["*/alpha"]}, SECRET, algorithm="HS256"
    )
    scoped = Collector()
    await scoped.connect(relay.ws_url + f"?token={token}&events=alerts,stats&bots=*")
    await relay.wait_for("client_connected")

    def slow(source: str) -> Callable[[int], bytes]:
        return lambda n: orjson.dumps(
            {"type": "ping", "latency": 99, "timestamp": n, "source": source}
        )

    # Both slow and established (heard over a second): both fire the latency alert.
    await asyncio.gather(*(publish_established(redis_server, slow(s)) for s in ("beta", "alpha")))
    await relay.wait_for(
        lambda r: r.get("event") == "alert" and r["bot"] == "bot:pingpong/beta", count=2
    )
    # Stats go out bot by bot in name order (alpha before beta) each tick: two of
    # alpha's after its alert mean a whole tick has passed since both alerts, beta's
    # stats included, had they been sent.
    index = 0
    while (await scoped.wait_count(index + 1))[index]["type"] != "bot:alert":
        index += 1
    stats_seen = 0
    while stats_seen < 2:
        message = (await scoped.wait_count(index + 1))[index]
        if message["type"] == "bot:stats" and message["bot"] == "bot:pingpong/alpha":
            stats_seen += 1
        index += 1
    kinds = {(m["type"], m["bot"]) for m in scoped.messages}
    assert ("bot:alert", "bot:pingpong/alpha") in kinds
    assert {bot for _, bot in kinds} == {"bot:pingpong/alpha"}  # no beta, no "*" overall
    await scoped.close()
