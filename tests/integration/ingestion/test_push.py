"""Push URLs (Uptime Kuma's) and ping URLs (Healthchecks') against a real relay and Redis:
what they report reaches a real WebSocket client as the design's envelope, and every bad
request is refused with its reason, counted, and costs no one else anything."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from pingpong_relay.redis_io.push_tokens import TOKENS_KEY
from tests.support import (
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    free_port,
    run_cli,
)

TOKEN = "cron1-token-0123456789"
OTHER_TOKEN = "other-token-0123456789"
CHANNEL = "bot:pingpong"


async def _call(
    relay: RelayProcess, path: str, *, method: str = "GET", data: bytes | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, relay.http_url + path, data=data) as response,
    ):
        body = await response.read()
        if response.content_type == "application/json":
            return response.status, orjson.loads(body)
        return response.status, body.decode()


async def _envelope(client: Collector, count: int = 1) -> list[dict[str, Any]]:
    """The first `count` bot:pingpong envelopes the client received (waiting for them)."""
    seen = 0
    while True:
        envelopes = [m for m in client.messages if m.get("type") == "bot:pingpong"]
        if len(envelopes) >= count:
            return envelopes[:count]
        seen = len(client.messages)
        await client.wait_count(seen + 1)


async def _status(client: Collector, bot: str, status: str) -> dict[str, Any]:
    """Waits for a bot:status message saying `bot` is `status`."""
    while True:
        for message in client.messages:
            is_status = message.get("type") == "bot:status" and message["bot"] == bot
            if is_status and message["status"] == status:
                return message
        await client.wait_count(len(client.messages) + 1)


@pytest.fixture
async def pushing(redis_server: RedisServer, start_relay: RelayFactory) -> RelayProcess:
    return await start_relay(
        redis_server.url,
        "--push-token",
        f"{TOKEN}=cron-1",
        "--push-token",
        f"{OTHER_TOKEN}=other",
    )


@pytest.fixture
async def watcher(pushing: RelayProcess) -> Any:
    client = Collector()
    await client.connect(pushing.ws_url_with("events=pingpong,status"))
    yield client
    await client.close()


async def test_a_kuma_push_reaches_a_client_as_the_design_envelope(
    pushing: RelayProcess, watcher: Collector
) -> None:
    status, body = await _call(pushing, f"/api/push/{TOKEN}?status=up&msg=OK&ping=12.5")
    assert (status, body) == (200, {"ok": True})
    (envelope,) = await _envelope(watcher)
    assert set(envelope) == {"type", "data", "timestamp", "source"}
    assert (envelope["type"], envelope["source"]) == ("bot:pingpong", "bot")
    data = envelope["data"]
    assert {k: data[k] for k in ("type", "latency", "source", "via")} == {
        "type": "pong",
        "latency": 12.5,
        "source": "cron-1",
        "via": "push",
    }
    assert isinstance(data["timestamp"], int)
    assert abs(data["timestamp"] - envelope["timestamp"]) < 60_000
    assert "status" not in data  # up is the default; only a problem is spelt out


async def test_a_push_without_ping_has_no_latency_and_a_message_is_kept(
    pushing: RelayProcess, watcher: Collector
) -> None:
    status, _ = await _call(pushing, f"/api/push/{TOKEN}?status=up&msg=nightly%20ok&ping=")
    assert status == 200
    (envelope,) = await _envelope(watcher)
    assert "latency" not in envelope["data"]
    assert envelope["data"]["msg"] == "nightly ok"


async def test_status_down_marks_the_bot_down_at_once_and_up_again(
    pushing: RelayProcess, watcher: Collector
) -> None:
    bot = f"{CHANNEL}/cron-1"
    status, _ = await _call(pushing, f"/api/push/{TOKEN}?status=down&msg=exchange%20unreachable")
    assert status == 200
    down = await _status(watcher, bot, "down")
    assert "exchange unreachable" in down["reason"]
    (envelope,) = await _envelope(watcher)
    assert (envelope["data"]["status"], envelope["data"]["reason"]) == (
        "down",
        "exchange unreachable",
    )
    _, bots = await pushing.get("/bots")
    assert orjson.loads(bots)["bots"][bot]["status"] == "down"
    await _call(pushing, f"/api/push/{TOKEN}?status=up&ping=3")
    await _status(watcher, bot, "up")


async def test_a_healthchecks_run_reports_its_duration_and_a_failure_its_reason(
    pushing: RelayProcess, watcher: Collector, redis_server: RedisServer
) -> None:
    assert await _call(pushing, f"/ping/{TOKEN}/start") == (200, "OK")
    assert await _call(pushing, f"/ping/{TOKEN}", method="POST", data=b"done") == (200, "OK")
    start, success = await _envelope(watcher, 2)
    assert (start["data"]["via"], start["data"]["event"]) == ("healthchecks", "start")
    assert success["data"]["duration_ms"] >= 0
    assert success["data"]["latency"] == success["data"]["duration_ms"]
    # A second success has no open run: no duration.
    await _call(pushing, f"/ping/{TOKEN}/0")
    third = (await _envelope(watcher, 3))[2]
    assert "duration_ms" not in third["data"]
    failed = await _call(pushing, f"/ping/{TOKEN}/fail", method="POST", data=b"disk full\nmore")
    assert failed == (200, "OK")
    down = await _status(watcher, f"{CHANNEL}/cron-1", "down")
    assert "disk full" in down["reason"]
    assert "more" not in down["reason"]
    await _call(pushing, f"/ping/{TOKEN}")
    await _status(watcher, f"{CHANNEL}/cron-1", "up")
    await _call(pushing, f"/ping/{TOKEN}/3")
    again = [m for m in watcher.messages if m.get("type") == "bot:status"]
    while not any("exit status 3" in m["reason"] for m in again):
        await watcher.wait_count(len(watcher.messages) + 1)
        again = [m for m in watcher.messages if m.get("type") == "bot:status"]


@pytest.mark.parametrize(
    ("path", "status", "reason", "words"),
    [
        ("/api/push/no-such-token-000000", 404, "unknown_token", "no such push token"),
        # not a token at all: the contract refuses it before any lookup
        ("/api/push/short", 400, "malformed", "token must be 16-128 characters"),
        (f"/api/push/{TOKEN}?status=maybe", 400, "malformed", "status must be up or down"),
        (f"/api/push/{TOKEN}?ping=fast", 400, "malformed", "must be a number of ms"),
        (f"/api/push/{TOKEN}?ping=-1", 400, "malformed", "0 to"),
        (f"/api/push/{TOKEN}?ping=nan", 400, "malformed", "0 to"),
        (f"/ping/{TOKEN}/sometimes", 400, "malformed", "exit status"),
        (f"/ping/{TOKEN}/256", 400, "malformed", "exit status"),
        ("/ping/unknown-uuid-0000000000000", 404, "unknown_token", "no such push token"),
    ],
)
async def test_a_bad_request_is_refused_with_its_reason_and_counted(
    pushing: RelayProcess, path: str, status: int, reason: str, words: str
) -> None:
    code, body = await _call(pushing, path)
    assert code == status
    assert body["error"] == reason
    assert words in body["message"]
    via = "push" if path.startswith("/api/push/") else "healthchecks"
    sample = f'pingpong_ingest_rejected_total{{reason="{reason}",via="{via}"}}'
    assert await pushing.metric(sample) == 1.0
    # The relay goes on serving: a good push is accepted after it.
    assert (await _call(pushing, f"/api/push/{OTHER_TOKEN}"))[0] == 200


async def test_a_token_never_reaches_a_log_line(pushing: RelayProcess) -> None:
    secret = "leaky-token-that-is-unknown-42"
    assert (await _call(pushing, f"/api/push/{secret}"))[0] == 404
    await pushing.wait_for(lambda r: r.get("event") == "ingest_refused")
    assert (await _call(pushing, f"/api/push/{TOKEN}?status=maybe"))[0] == 400
    assert not any(secret in orjson.dumps(r).decode() for r in pushing.records)
    assert not any(TOKEN in orjson.dumps(r).decode() for r in pushing.records)


async def test_pushes_are_limited_per_token_and_per_address(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    # One token: a burst of 10 s worth at 0.2/s is 2; the address allows 2 per 10 s too.
    relay = await start_relay(
        redis_server.url,
        "--push-token", f"{TOKEN}=cron-1",
        "--push-token", f"{OTHER_TOKEN}=other",
        "--push-rate", "0.2",
        "--push-address-rate", "0.3",
    )  # fmt: skip
    answers = [await _call(relay, f"/api/push/{TOKEN}") for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 429]
    assert answers[2][1]["error"] == "token_rate"
    # The address had a burst of 3: its fourth request is over, whatever the token.
    status, body = await _call(relay, f"/api/push/{OTHER_TOKEN}")
    assert (status, body["error"]) == (429, "address_rate")
    assert await relay.metric('pingpong_ingest_rejected_total{reason="token_rate",via="push"}') == 1
    assert (
        await relay.metric('pingpong_ingest_rejected_total{reason="address_rate",via="push"}') == 1
    )


async def test_a_bot_outside_accept_bots_is_refused(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--push-token", f"{TOKEN}=cron-1",
        "--accept-bots", f"{CHANNEL}/other*",
    )  # fmt: skip
    status, body = await _call(relay, f"/api/push/{TOKEN}")
    assert (status, body["error"]) == (403, "bot_not_accepted")
    assert "--accept-bots" in body["message"]


async def test_redis_down_answers_503_and_nothing_is_silently_lost(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--push-token", f"{TOKEN}=cron-1")
    assert (await _call(relay, f"/api/push/{TOKEN}"))[0] == 200
    redis_server.stop()
    status, body = await _call(relay, f"/api/push/{TOKEN}")
    assert (status, body["error"]) == (503, "redis_unavailable")
    assert (
        await relay.metric('pingpong_ingest_rejected_total{reason="redis_unavailable",via="push"}')
        == 1
    )


async def test_tokens_from_the_cli_work_at_every_relay_until_revoked(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    first = await start_relay(redis_server.url)
    second = await start_relay(redis_server.url)
    added = await _cli(
        "push", "add", "backup-job", "--url", first.http_url, "--redis-url", redis_server.url
    )
    push_url = next(line.split()[-1] for line in added.splitlines() if "/api/push/" in line)
    ping_url = next(line.split()[-1] for line in added.splitlines() if "/ping/" in line)
    token = ping_url.rsplit("/", 1)[1]
    # Only the hash is stored.
    redis = aioredis.from_url(redis_server.url)
    try:
        stored = await redis.hgetall(TOKENS_KEY)
    finally:
        await redis.aclose()
    assert len(stored) == 1
    assert all(token not in str(item) for item in [*stored, *stored.values()])
    client = Collector()
    await client.connect(first.ws_url_with("types=pong"))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(push_url) as response:
                assert response.status == 200
            # The same token at the other relay: it reads the same Redis.
            async with session.get(f"{second.http_url}/ping/{token}") as response:
                assert response.status == 200
        envelopes = await _envelope(client, 2)
        assert [e["data"]["source"] for e in envelopes] == ["backup-job", "backup-job"]
    finally:
        await client.close()
    listed = orjson.loads(await _cli("push", "list", "--json", "--redis-url", redis_server.url))
    assert [(e["bot"], len(e["id"])) for e in listed] == [("backup-job", 12)]
    revoked = await _cli("push", "revoke", listed[0]["id"], "--redis-url", redis_server.url)
    assert "revoked 1 token(s)" in revoked
    # Within the relays' cache interval, the token stops working everywhere.
    for relay in (first, second):
        status = 200
        for _ in range(200):  # bounded: the cache holds a lookup 5 s
            status = (await _call(relay, f"/ping/{token}"))[0]
            if status == 404:
                break
            await asyncio.sleep(0.05)
        assert status == 404


async def _cli(*args: str) -> str:
    code, out, err = await run_cli(*args, timeout=30)
    assert code == 0, err
    return out


async def test_with_jwt_auth_a_push_needs_only_its_token_which_opens_nothing_else(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--auth", "jwt",
        "--push-token", f"{TOKEN}=cron-1",
        env={"PINGPONG_JWT_SECRET": "push-test-secret-" + "k" * 40},
    )  # fmt: skip
    assert await _call(relay, f"/api/push/{TOKEN}?ping=4") == (200, {"ok": True})
    assert (await _call(relay, f"/ping/{TOKEN}"))[0] == 200
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        session.get(f"{relay.http_url}/bots") as response,
    ):
        assert response.status == 401
    assert (await _call(relay, f"/api/push/{OTHER_TOKEN}"))[0] == 404


async def test_the_push_cli_says_what_went_wrong_in_one_line(redis_server: RedisServer) -> None:
    code, out, err = await run_cli("push", "revoke", "nobody", "--redis-url", redis_server.url)
    assert (code, out) == (1, "")
    assert err.strip() == "push revoke: no token has id or bot 'nobody'"
    assert (await _cli("push", "add", "cron-7", "--redis-url", redis_server.url)).startswith(
        "token "
    )
    listed = await _cli("push", "list", "--redis-url", redis_server.url)
    assert listed.splitlines()[0] == "push tokens: 1"
    assert " bot:pingpong/cron-7  created " in listed
    unreachable = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    code, out, err = await run_cli("push", "list", "--redis-url", unreachable)
    assert code == 1
    assert err.startswith("push list: cannot reach Redis at redis://")
    assert "hunter2secret" not in err
    assert len(err.strip().splitlines()) == 1
