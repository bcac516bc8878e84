"""Mutes against real relays and Redis: kept across a restart, shared by two relays, a
scheduled window, a mute that ends on a firing alert, who may mute, and the CLI."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis

from pingpong_relay.auth import mint
from pingpong_relay.redis_io.mutes import MUTES_KEY
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S
from tests.support import (
    FAST_SILENCE,
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    WebhookReceiver,
    publish,
    run_cli,
)

MUTED = "bot:pingpong/gate-1"
OTHER = "bot:pingpong/other"
SECRET = "mute-test-secret-" + "k" * 40


def _beat(source: str, n: int) -> bytes:
    return orjson.dumps({"type": "ping", "latency": 5, "timestamp": n + 1, "source": source})


async def _two_bots_go_silent(redis_server: RedisServer) -> None:
    """Both bots established (heard over the span), then silent."""
    gap_s = ESTABLISHED_SPAN_S / (ESTABLISHED_MESSAGES - 1) + 0.3
    for n in range(ESTABLISHED_MESSAGES):
        if n:
            await asyncio.sleep(gap_s)  # the bots' cadence, not a wait for the relay
        for source in ("gate-1", "other"):
            await publish(redis_server.url, _beat(source, n))


async def _request(
    relay: RelayProcess,
    method: str,
    path: str = "/api/mutes",
    body: Any = None,
    token: str | None = None,
    base: str | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, (base or relay.http_url) + path, json=body, headers=headers
        ) as response,
    ):
        return response.status, await response.json()


async def _firing(relay: RelayProcess, bot: str) -> None:
    await relay.wait_for(
        lambda r: r.get("event") == "alert" and r["bot"] == bot and r["state"] == "firing"
    )


def _sent_for(webhook: WebhookReceiver, bot: str) -> list[dict[str, Any]]:
    return [a for a in webhook.alerts if a["bot"] == bot]


async def test_a_mute_outlives_a_restart_and_its_end_notifies_a_firing_alert(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    flags = ("--webhook-url", webhook.url, *FAST_SILENCE)
    first = await start_relay(redis_server.url, *flags)
    status, created = await _request(
        first, "POST", body={"bots": ["bot:pingpong/gate-*"], "duration": "1h", "comment": "x"}
    )
    assert status == 201
    await first.stop()

    relay = await start_relay(redis_server.url, *flags)
    _, listed = await _request(relay, "GET")
    assert [m["id"] for m in listed["active"]] == [created["id"]]
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=alerts")
    await _two_bots_go_silent(redis_server)
    await webhook.wait_for("silence", OTHER, "firing")
    await _firing(relay, MUTED)
    # Shown, marked muted; sent to no webhook.
    muted: dict[str, bool] = {}
    count = 0
    while len(muted) < 2:  # each message as it arrives, until both bots' firing events
        count += 1
        alert = (await watcher.wait_count(count))[count - 1]
        if alert.get("state") == "firing":
            muted[alert["bot"]] = alert.get("muted", False)
    assert muted == {MUTED: True, OTHER: False}
    assert _sent_for(webhook, MUTED) == []
    _, shown = await _request(relay, "GET", "/alerts")
    assert {a["bot"]: a.get("muted", False) for a in shown["active"]} == muted

    # Expired while the bot is still silent: the firing alert is sent now, and the clients
    # that saw it muted get it again, unmuted, as a repeat.
    status, _ = await _request(relay, "DELETE", f"/api/mutes/{created['id']}")
    assert status == 200
    sent = await webhook.wait_for("silence", MUTED, "firing", timeout=10)
    assert "muted" not in sent
    while True:
        count += 1
        again = (await watcher.wait_count(count, timeout=10))[count - 1]
        if again.get("bot") == MUTED:
            break
    assert (again["state"], again["repeat"], "muted" in again) == ("firing", True, False)
    await watcher.close()
    status, again = await _request(relay, "DELETE", f"/api/mutes/{created['id']}")
    assert (status, again["error"]) == (404, "unknown_mute")


async def test_a_mute_made_through_one_relay_holds_in_another(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    maker = await start_relay(redis_server.url, *FAST_SILENCE)
    sender = await start_relay(redis_server.url, "--webhook-url", webhook.url, *FAST_SILENCE)
    status, _ = await _request(maker, "POST", body={"bots": [MUTED], "duration": "1h"})
    assert status == 201
    await _two_bots_go_silent(redis_server)
    await webhook.wait_for("silence", OTHER, "firing")
    await _firing(sender, MUTED)
    assert _sent_for(webhook, MUTED) == []


async def test_a_scheduled_window_starts_and_ends(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    relay = await start_relay(redis_server.url, "--webhook-url", webhook.url, *FAST_SILENCE)
    now_ms = time.time() * 1000
    ends_ms = now_ms + 12_000  # long enough for the bot to go silent inside it
    window = {"bots": [MUTED], "starts_at": now_ms + 1500, "ends_at": ends_ms}
    status, created = await _request(relay, "POST", body=window)
    assert status == 201
    _, listed = await _request(relay, "GET")
    assert (listed["active"], [m["id"] for m in listed["scheduled"]]) == ([], [created["id"]])
    await _two_bots_go_silent(redis_server)  # goes silent inside the window
    await webhook.wait_for("silence", OTHER, "firing")
    await _firing(relay, MUTED)
    assert time.time() * 1000 < ends_ms
    assert _sent_for(webhook, MUTED) == []
    sent = await webhook.wait_for("silence", MUTED, "firing", timeout=20)
    assert sent["at_ms"] >= ends_ms


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"duration": "2h"}, "bots"),
        ({"bots": ["bot:*"], "duration": "soon"}, "duration"),
        ({"bots": ["bot:*"], "ends_at": "yesterday"}, "ends_at"),
        ({"bots": ["bot:*"], "duration": "1h", "comment": 1}, "comment"),
    ],
)
async def test_a_bad_body_is_refused_naming_its_field(
    relay: RelayProcess, body: dict[str, Any], field: str
) -> None:
    status, answer = await _request(relay, "POST", body=body)
    assert (status, answer["error"], answer["field"]) == (400, "bad_mute", field)
    assert answer["message"].startswith(f"{field}: ")
    record = await relay.wait_for(lambda r: r.get("event") == "http_refused")
    assert "bad_mute" in str(record)


async def test_with_jwt_muting_needs_the_mute_scope(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--auth", "jwt", env={"PINGPONG_JWT_SECRET": SECRET}
    )
    now = time.time()
    plain = mint(SECRET, "viewer", now_s=now, ttl_s=600)
    muter = mint(SECRET, "ops", now_s=now, ttl_s=600, scopes=["mute"])
    body = {"bots": [MUTED], "duration": "10m"}
    assert (await _request(relay, "POST", body=body))[0] == 401
    status, refused = await _request(relay, "POST", body=body, token=plain)
    assert (status, refused["error"]) == (403, "forbidden")
    status, created = await _request(relay, "POST", body=body, token=muter)
    assert status == 201
    assert created["mute"]["created_by"] == "ops"
    assert (await _request(relay, "GET"))[0] == 401
    status, listed = await _request(relay, "GET", token=plain)
    assert (status, len(listed["active"])) == (200, 1)
    path = f"/api/mutes/{created['id']}"
    assert (await _request(relay, "DELETE", path, token=plain))[0] == 403
    assert (await _request(relay, "DELETE", path, token=muter))[0] == 200


def _outside_address() -> str | None:
    """One of this machine's addresses that is not loopback, if it has one."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


async def test_without_auth_the_mute_api_answers_only_on_loopback(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    outside = _outside_address()
    if outside is None:
        pytest.skip("this machine has no address but loopback (see test_mutes.py unit test)")
    relay = await start_relay(redis_server.url, "--host", "0.0.0.0", "--allow-anonymous")
    base = f"http://{outside}:{relay.http_port}"
    body = {"bots": [MUTED], "duration": "10m"}
    status, refused = await _request(relay, "POST", body=body, base=base)
    assert (status, refused["error"]) == (403, "forbidden")
    assert (await _request(relay, "GET", base=base))[0] == 403
    assert (await _request(relay, "POST", body=body))[0] == 201  # on loopback


async def _cli(*args: str) -> tuple[int, str, str]:
    return await run_cli("mute", *args, timeout=30)


async def test_the_cli_adds_lists_and_expires_mutes_a_relay_honours(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    url = ("--redis-url", redis_server.url)
    code, out, _ = await _cli(
        "add", "bot:pingpong/gate-*", "--for", "2h", "-m", "exchange maintenance", *url
    )
    assert code == 0
    mute_id = out.strip()
    _, listed = await _request(relay, "GET")
    assert [(m["id"], m["comment"]) for m in listed["active"]] == [
        (mute_id, "exchange maintenance")
    ]
    code, out, _ = await _cli("list", *url)
    assert code == 0
    assert "active: 1" in out
    assert mute_id in out
    assert "exchange maintenance" in out
    code, out, _ = await _cli("expire", mute_id, *url)
    assert (code, out.strip()) == (0, f"expired {mute_id}")
    code, _, err = await _cli("expire", mute_id, *url)
    assert code == 1
    assert "no mute" in err
    code, _, err = await _cli("add", "bot:*", "--for", "soon", *url)
    assert code == 2
    assert "duration:" in err
    assert (await _request(relay, "GET"))[1] == {"active": [], "scheduled": []}


async def test_an_unreadable_mute_in_redis_is_skipped_and_logged_once(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        await client.hset(MUTES_KEY, "broken", b"{not json")
    finally:
        await client.aclose()
    code, out, _ = await _cli("add", MUTED, "--for", "1h", "--redis-url", redis_server.url)
    assert code == 0
    relay = await start_relay(redis_server.url)
    for _ in range(3):  # each answer reads Redis again
        status, listed = await _request(relay, "GET")
        assert (status, [m["id"] for m in listed["active"]]) == (200, [out.strip()])
    record = await relay.wait_for(lambda r: r.get("event") == "mute_unreadable")
    assert "broken" in record["message"]
    await _request(relay, "GET")
    assert len(relay.events("mute_unreadable")) == 1
