"""Security over real sockets: safe defaults, origins, scopes everywhere, hostile tokens,
secrets kept out of logs, and control-frame floods."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import aiohttp
import jwt
import orjson
import psutil
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support import (
    DESIGN_PING,
    ROOT,
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    WebhookReceiver,
    free_port,
    http_server,
    publish_established,
)

SECRET = "relay-test-secret-" + "s" * 50
JWT_ENV = {"PINGPONG_JWT_SECRET": SECRET}


def _token(**claims: Any) -> str:
    body = {"sub": "dash", "exp": int(time.time() + 600), **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes = b"x") -> str:
    """A token PyJWT would not make (a numeric kid), signed for real with HS256."""
    import hashlib
    import hmac

    signing_input = f"{_b64(orjson.dumps(header))}.{_b64(orjson.dumps(claims))}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def _handshake_status(url: str, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, headers=headers or {}):
                return 101
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status


def _listening_addresses(pid: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    }


# --- 1. exposure by default ---------------------------------------------------------


async def test_by_default_the_relay_listens_on_loopback_only(redis_server: RedisServer) -> None:
    relay = RelayProcess(redis_server.url)
    relay.args = [a for a in relay.args if a not in ("--host", "127.0.0.1")]
    assert "--host" not in relay.args
    try:
        await relay.start()
        listening = await relay.wait_for("listening")
        assert listening["host"] == "127.0.0.1"
        assert relay.process is not None
        assert _listening_addresses(relay.process.pid) == {"127.0.0.1"}
        assert not relay.events("anonymous_exposed")
    finally:
        await relay.stop()


async def test_an_open_non_loopback_relay_refuses_to_start(redis_server: RedisServer) -> None:
    relay = RelayProcess(redis_server.url, "--host", "0.0.0.0")
    await relay.start_process()
    assert await relay.wait_exit() == 2
    refusal = [line for line in relay.raw_lines if line.strip()]
    # One line naming the way out, then the CLI's pointer to --help (as every usage error).
    assert len(refusal) == 2, refusal
    assert refusal[1].strip() == "try 'pingpong-relay serve --help'"
    assert "--allow-anonymous" in refusal[0]
    assert "PINGPONG_ALLOW_ANONYMOUS" in refusal[0]
    assert "--auth jwt" in refusal[0]


async def test_allow_anonymous_serves_every_interface_and_says_so(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--host", "0.0.0.0", env={"PINGPONG_ALLOW_ANONYMOUS": "1"}
    )
    warning = await relay.wait_for("anonymous_exposed")
    assert warning["level"] == "WARNING"
    assert relay.process is not None
    assert _listening_addresses(relay.process.pid) == {"0.0.0.0"}


async def test_a_non_loopback_relay_with_jwt_starts_without_the_flag(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--host", "0.0.0.0", "--auth", "jwt", env=JWT_ENV)
    assert relay.process is not None
    assert _listening_addresses(relay.process.pid) == {"0.0.0.0"}
    assert not relay.events("anonymous_exposed")


# --- 2. cross-site WebSocket hijacking and DNS rebinding ----------------------------


async def test_browser_origins_other_than_the_relays_own_are_refused(relay: RelayProcess) -> None:
    own = f"http://127.0.0.1:{relay.http_port}"
    assert await _handshake_status(relay.ws_url) == 101  # no Origin: a bot, an SDK, wscat
    assert await _handshake_status(relay.ws_url, {"Origin": own}) == 101
    assert (
        await _handshake_status(relay.ws_url, {"Origin": f"http://localhost:{relay.http_port}"})
        == 101
    )
    refused = {
        "another site": {"Origin": "https://evil.example"},
        "another port here": {"Origin": f"http://127.0.0.1:{free_port()}"},
        "sandboxed frame": {"Origin": "null"},
        # DNS rebinding: the attacker's name resolves to the relay, so Host agrees with
        # Origin; the relay must not take the request's word for who it is.
        "rebinding": {
            "Origin": f"http://evil.example:{relay.http_port}",
            "Host": f"evil.example:{relay.port}",
        },
    }
    for case, headers in refused.items():
        assert await _handshake_status(relay.ws_url, headers) == 403, case
    await relay.wait_for("origin_refused", count=len(refused))
    assert await relay.metric('pingpong_connections_refused_total{reason="origin"}') == len(refused)


async def test_listed_origins_and_hosts_may_connect(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--allowed-origin",
        "https://ops.example",
        "--allowed-host",
        "relay.internal",
    )
    for origin in ("https://ops.example", f"http://relay.internal:{relay.http_port}"):
        assert await _handshake_status(relay.ws_url, {"Origin": origin}) == 101, origin
    assert await _handshake_status(relay.ws_url, {"Origin": "https://evil.example"}) == 403


async def test_the_data_ports_redirect_does_not_reflect_the_host_header(
    relay: RelayProcess,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"http://127.0.0.1:{relay.port}/",
            headers={"Host": "evil.example"},
            allow_redirects=False,
        ) as hostile,
        session.get(f"http://127.0.0.1:{relay.port}/x", allow_redirects=False) as honest,
    ):
        assert hostile.status == 302
        assert hostile.headers["Location"] == f"http://127.0.0.1:{relay.http_port}/"
        assert "evil" not in hostile.headers["Location"]
        assert honest.headers["Location"] == f"http://127.0.0.1:{relay.http_port}/x"


# --- 4, 5. scopes on the WebSocket ---------------------------------------------------


async def test_statuses_respect_the_tokens_events_grant(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", env=JWT_ENV)
    await redis_server.publish(DESIGN_PING)
    await relay.wait_for("bot_status")  # the bot is known and up
    token = _token(events=["pingpong"])
    client = Collector()
    await client.connect(f"{relay.ws_url}?events=pingpong,status&token={token}")
    assert client.ws is not None
    await client.ws.send_str('{"action":"subscribe","events":["status"],"id":1}')
    await client.wait_count(1)  # the ack
    await redis_server.publish(DESIGN_PING.replace(b"1234567890", b"1234567891"))
    messages = await client.wait_count(2)
    assert [m["type"] for m in messages] == ["ack", "bot:pingpong"], messages
    await client.close()


async def test_list_shows_only_the_bots_the_token_may_see(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", env=JWT_ENV)
    for source in ("gate-1", "okx-1"):
        await redis_server.publish(DESIGN_PING.replace(b'"bot"}', f'"{source}"}}'.encode()))
    await relay.wait_for("bot_status", count=2)
    client = Collector()
    await client.connect(f"{relay.ws_url}?token={_token(bots=['bot:pingpong/gate-*'])}")
    assert client.ws is not None
    await client.ws.send_str('{"action":"list"}')
    (listing,) = await client.wait_count(1)
    assert listing["bots"] == ["bot:pingpong/gate-1"]
    await client.close()


# --- 15, 16. hostile tokens -----------------------------------------------------------


async def test_malformed_tokens_are_401_never_500(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", env=JWT_ENV)
    relay.http_headers = {"Authorization": f"Bearer {_token(scope='metrics')}"}
    claims = {"sub": "x", "exp": int(time.time() + 600)}
    tokens = {
        "numeric kid": _hand_made(
            {"alg": "HS256", "typ": "JWT", "kid": 5}, claims, SECRET.encode()
        ),
        "list header": f"{_b64(b'[1]')}.{_b64(orjson.dumps(claims))}.{_b64(b'sig')}",
        "string exp": _token(exp=str(int(time.time() + 600))),
        "bool exp": _token(exp=True),
    }
    for case, token in tokens.items():
        status = await _handshake_status(relay.ws_url, {"Authorization": f"Bearer {token}"})
        assert status == 401, case
        http_status, body = await relay.get("/bots", headers={"Authorization": f"Bearer {token}"})
        assert http_status == 401, case
        assert b"Traceback" not in body
        assert b"must be a string" not in body
    _, metrics = await relay.get("/metrics")
    failures = sum(
        float(line.rpartition(" ")[2])
        for line in metrics.decode().splitlines()
        if line.startswith("pingpong_auth_failures_total{")
    )
    assert failures == 2 * len(tokens)
    assert not [r for r in relay.records if r.get("level") == "ERROR"]


async def test_a_key_of_another_type_than_the_algorithm_is_401(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Any
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    relay = await start_relay(redis_server.url, "--auth", "jwt", "--jwt-public-key", str(pem))
    ec_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "x", "exp": int(time.time() + 600)}, ec_key, algorithm="ES256")
    assert await _handshake_status(relay.ws_url, {"Authorization": f"Bearer {token}"}) == 401
    status, body = await relay.get("/bots", headers={"Authorization": f"Bearer {token}"})
    assert status == 401
    assert orjson.loads(body)["reason"] == "malformed"
    good = jwt.encode({"sub": "x", "exp": int(time.time() + 600)}, rsa_key, algorithm="RS256")
    assert await _handshake_status(relay.ws_url, {"Authorization": f"Bearer {good}"}) == 101
    assert not [r for r in relay.records if r.get("level") == "ERROR"]


async def test_refreshing_with_a_string_exp_is_refused_and_keeps_the_expiry(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--auth", "jwt", env=JWT_ENV)
    client = Collector()
    await client.connect(f"{relay.ws_url}?token={_token(exp=int(time.time()) + 3)}")
    assert client.ws is not None
    forever = _token(exp="99999999999")
    await client.ws.send_str(orjson.dumps({"action": "refresh", "token": forever}).decode())
    (reply,) = await client.wait_count(1)
    assert reply["type"] == "error"
    assert reply["error"] == "bad_claims"
    await asyncio.wait_for(client.closed.wait(), 20)  # the first token's expiry still holds
    assert client.close_code == 4003
    # 17: the refused frame is logged without the token.
    refused = await relay.wait_for("command_refused")
    assert forever not in str(refused)
    assert forever.split(".")[2] not in "\n".join(relay.raw_lines)
    await client.close()


# --- 17. secrets in logs -------------------------------------------------------------


async def test_failed_webhooks_log_scheme_and_host_only(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    secret_path = "/api/webhooks/123456/s3cr3t-t0ken"
    refuse = WebhookReceiver()

    async def gone(_request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(status=404)

    async with http_server(secret_path, gone, refuse.port):
        relay = await start_relay(
            redis_server.url,
            "--webhook-url",
            f"http://127.0.0.1:{refuse.port}{secret_path}?key=querysecret",
            "--silence-timeout",
            "1",
            "--silence-for",
            "0",
            "--evaluation-interval",
            "0.2",
        )
        # Established (heard over a second), so its silence alert is posted.
        await publish_established(
            redis_server,
            lambda n: orjson.dumps(
                {"type": "ping", "latency": 10, "timestamp": 1234567890 + n, "source": "bot"}
            ),
        )
        failed = await relay.wait_for("webhook_failed")
    assert failed["url"] == f"http://127.0.0.1:{refuse.port}"
    log_text = "\n".join(relay.raw_lines)
    assert "s3cr3t" not in log_text
    assert "querysecret" not in log_text


# --- 19. control-frame floods --------------------------------------------------------


async def test_a_ping_flood_is_rate_limited_like_any_other_frame(
    redis_server: RedisServer, relay: RelayProcess
) -> None:
    bystander = Collector()
    await bystander.connect(relay.ws_url)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(relay.ws_url, autoping=False)
        for _ in range(200):  # bounded: enough to pass the burst and the 5 strikes
            if ws.closed:
                break
            try:
                await ws.ping(b"flood")
            except ConnectionResetError:
                break
        closing = await ws.receive(timeout=20)
        while closing.type in (aiohttp.WSMsgType.PONG, aiohttp.WSMsgType.TEXT):
            closing = await ws.receive(timeout=20)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 1008
        await ws.close()
    await relay.wait_for("client_policy_closed")
    assert await relay.metric("pingpong_client_policy_closes_total") == 1
    # Pings within the rate are still answered, and everyone else is served.
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(relay.ws_url, autoping=False) as calm,
    ):
        await calm.ping(b"hello")
        pong = await calm.receive(timeout=10)
        assert pong.type == aiohttp.WSMsgType.PONG
        assert pong.data == b"hello"
    await redis_server.publish(DESIGN_PING)
    (envelope,) = await bystander.wait_count(1)
    assert envelope["type"] == "bot:pingpong"
    await bystander.close()


# --- docs/security.md's Redis ACLs -----------------------------------------------------


async def test_the_documented_redis_acls_let_bots_publish_and_nothing_more(
    start_relay: RelayFactory,
) -> None:
    import redis.asyncio as aioredis
    from redis.exceptions import NoPermissionError

    server = RedisServer()
    await server.start()
    try:
        admin = aioredis.from_url(server.url)
        # Exactly the lines docs/security.md gives, read from it so the two cannot drift.
        acl_lines = [
            line.strip()
            for line in (ROOT / "docs" / "security.md").read_text().splitlines()
            if line.strip().startswith("ACL SETUSER")
        ]
        assert [line.split()[2] for line in acl_lines] == ["bot", "relay"]
        for line in acl_lines:
            await admin.execute_command(  # type: ignore[no-untyped-call, unused-ignore]  # untyped before redis 8
                *line.replace("BOT_PASSWORD", "bot-pw")
                .replace("RELAY_PASSWORD", "relay-pw")
                .split()
            )
        await admin.aclose()
        base = f"127.0.0.1:{server.port}/0"
        relay = await start_relay(f"redis://relay:relay-pw@{base}")
        client = Collector()
        await client.connect(f"{relay.ws_url}?ids=1")
        bot = aioredis.from_url(f"redis://bot:bot-pw@{base}")
        assert await bot.publish("bot:pingpong", DESIGN_PING) == 1
        (envelope,) = await client.wait_count(1)
        assert envelope["data"]["latency"] == 10
        assert "id" in envelope  # the relay's user could record it
        with pytest.raises(NoPermissionError):
            await bot.publish("other", b"x")
        with pytest.raises(NoPermissionError):
            await bot.xrange("{pingpong}:history:bot:pingpong/bot")
        await bot.aclose()
        status, body = await relay.get("/history")
        assert status == 200
        assert len(orjson.loads(body)["items"]) == 1
        assert not [line for line in relay.raw_lines if "NOPERM" in line]
        await client.close()
    finally:
        server.stop()
