"""Bot health over real processes: statuses, alerts with a real webhook receiver, statistics."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import (
    DESIGN_PING,
    FAST_SILENCE,
    Collector,
    RedisServer,
    RelayFactory,
    WebhookReceiver,
    publish_established,
)

FAST = (
    *FAST_SILENCE,
    "--stats-interval",
    "0.2",
    "--latency-threshold",
    "100",
    "--latency-for",
    "0.3",
)


def _beat(kind: str = "ping", latency: float = 20, **extra: object) -> bytes:
    return orjson.dumps(
        {"type": kind, "latency": latency, "timestamp": 1, "source": "bot", **extra}
    )


async def _establish(redis_server: RedisServer, latency: float = 20, source: str = "bot") -> None:
    """Three distinct heartbeats over a second: established, so the bot's rules apply."""
    await publish_established(
        redis_server, lambda n: _beat(latency=latency, source=source, timestamp=n + 1)
    )


async def _next(client: Collector, kind: str, start: int = 0, **match: object) -> dict[str, Any]:
    """The first message of this type (and fields) at or after index `start`."""
    index = start
    while True:
        messages = await client.wait_count(index + 1)
        message = messages[index]
        if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
            return message
        index += 1


async def test_a_silent_bot_goes_pending_then_down_alerts_and_recovers(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    webhook.fail_first = 1  # the first POST fails: the relay must retry it
    relay = await start_relay(redis_server.url, *FAST, "--webhook-url", webhook.url)
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=status,alerts")
    await relay.wait_for("client_connected")
    bot = "bot:pingpong/bot"

    await _establish(redis_server)
    up = await _next(watcher, "bot:status", status="up")
    assert up["bot"] == bot
    assert up["previous"] is None

    # The bot stops publishing: pending, then down, with the silence alert firing.
    pending = await _next(watcher, "bot:status", status="pending")
    assert pending["previous"] == "up"
    down = await _next(watcher, "bot:status", status="down")
    assert down["previous"] == "pending"
    firing = await _next(watcher, "bot:alert", rule="silence", state="firing")
    assert firing["bot"] == bot
    assert firing["kind"] == "silence"
    assert firing["value"] >= 0.6
    hooked = await webhook.wait_for("silence", bot, "firing")
    assert hooked == firing
    assert await relay.metric(f'pingpong_alerts_firing{{bot="{bot}",rule="silence"}}') == 1
    assert await relay.metric(f'pingpong_bot_up{{bot="{bot}"}}') == 0

    status, body = await relay.get("/alerts")
    assert status == 200
    active = orjson.loads(body)["active"]
    assert [(a["rule"], a["bot"], a["state"]) for a in active] == [("silence", bot, "firing")]

    # It comes back: up again, and the alert resolves everywhere.
    await redis_server.publish(_beat("pong"))
    back = await _next(watcher, "bot:status", status="up", previous="down")
    assert back["bot"] == bot
    resolved = await _next(watcher, "bot:alert", rule="silence", state="resolved")
    assert resolved["fired"] is True
    assert (await webhook.wait_for("silence", bot, "resolved"))["fired"] is True
    status, body = await relay.get("/alerts")
    alerts = orjson.loads(body)
    assert alerts["active"] == []
    assert any(a["rule"] == "silence" for a in alerts["recently_resolved"])
    _, metrics = await relay.get("/metrics")
    assert f'pingpong_alerts_firing{{bot="{bot}",rule="silence"}}' not in metrics.decode()
    assert await relay.metric("pingpong_webhook_failures_total") == 0
    await watcher.close()


async def test_high_latency_degrades_the_bot_and_fires_the_latency_alert(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *FAST, "--silence-timeout", "60")
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=status,alerts&bots=bot:pingpong/*")
    await relay.wait_for("client_connected")
    await _establish(redis_server, latency=20)
    await _next(watcher, "bot:status", status="up")
    await redis_server.publish(_beat(latency=900))
    degraded = await _next(watcher, "bot:status", status="degraded")
    assert degraded["previous"] == "up"
    firing = await _next(watcher, "bot:alert", rule="latency", state="firing")
    assert firing["value"] > 100
    assert firing["threshold"] == 100
    assert await relay.metric('pingpong_bot_up{bot="bot:pingpong/bot"}') == 0.5
    await watcher.close()


async def test_a_client_that_starts_watching_statuses_first_gets_every_current_one(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *FAST, "--silence-timeout", "60")
    for source in ("alpha", "beta", "gamma"):
        await redis_server.publish(_beat(source=source))
    await relay.wait_for("bot_status", count=3)

    late = Collector()
    await late.connect(relay.ws_url + "?events=status&bots=*alpha,*gamma")
    first = await late.wait_count(2)
    assert [(m["type"], m["bot"], m["status"]) for m in first] == [
        ("bot:status", "bot:pingpong/alpha", "up"),
        ("bot:status", "bot:pingpong/gamma", "up"),
    ]
    other = Collector()
    await other.connect(relay.ws_url)
    assert other.ws is not None
    await other.ws.send_str('{"action":"subscribe","events":["status"]}')
    replies = await other.wait_count(4)
    assert replies[0]["type"] == "ack"
    assert [m["bot"] for m in replies[1:]] == [
        "bot:pingpong/alpha",
        "bot:pingpong/beta",
        "bot:pingpong/gamma",
    ]
    await late.close()
    await other.close()


async def test_statistics_over_http_and_to_stats_subscribers(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *FAST, "--silence-timeout", "60", "--log-stages")
    latencies = [10, 20, 30, 40, 1000]
    for n, latency in enumerate(latencies):
        await redis_server.publish(_beat("ping" if n % 2 == 0 else "pong", latency))
    await relay.wait_for("received", count=len(latencies))

    status, body = await relay.get("/stats?window=1m&bot=bot:pingpong/bot")
    assert status == 200
    stats = orjson.loads(body)
    bot = stats["bots"]["bot:pingpong/bot"]
    assert (bot["count"], bot["ping"], bot["pong"]) == (5, 3, 2)
    assert bot["latency_ms"]["min"] == 10
    assert bot["latency_ms"]["max"] == 1000
    assert bot["latency_ms"]["p50"] == pytest.approx(30, rel=0.03)
    # The bot's clock says 1970: transit is hugely positive, not negative skew.
    assert bot["transit_ms"]["negative"] == 0
    assert stats["overall"]["count"] == 5

    status, body = await relay.get("/stats?window=2m")
    assert status == 400
    assert b"1m" in body
    status, _ = await relay.get("/stats?window=1m&bot=nobody")
    assert status == 404

    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=stats")
    message = await _next(watcher, "bot:stats", bot="bot:pingpong/bot")
    assert set(message["windows"]) == {"1m", "5m", "15m", "1h"}
    assert message["windows"]["1m"]["count"] == 5
    overall = await _next(watcher, "bot:stats", bot="*")
    assert overall["windows"]["5m"]["count"] == 5
    await watcher.close()


async def test_a_bot_clock_far_off_is_relayed_but_kept_out_of_the_transit_statistics(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--max-clock-skew", "5m")
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    # The design's own example, timestamp 1234567890 (1970), then a bot with a sound clock.
    sound = orjson.dumps(
        {"type": "pong", "latency": 12, "timestamp": int(time.time() * 1000), "source": "bot"}
    )
    await redis_server.publish(DESIGN_PING)
    await redis_server.publish(sound)
    first, second = await client.wait_count(2)
    # Relayed as before: the contract does not depend on the bot's clock.
    assert first["data"] == orjson.loads(DESIGN_PING)
    assert second["data"] == orjson.loads(sound)

    status, body = await relay.get("/stats?window=1m")
    assert status == 200
    for figures in (orjson.loads(body)["overall"], orjson.loads(body)["bots"]["bot:pingpong/bot"]):
        assert figures["count"] == 2
        assert figures["latency_ms"]["max"] == 12  # still counted for latency
        # Before: a mean of 4.5e11 ms and no suspicion. Now only the sound message's transit.
        assert 0 <= figures["transit_ms"]["mean"] < 60_000
        assert figures["transit_ms"]["max"] < 60_000
        assert figures["clock_skew"] == {"messages": 1}
        assert figures["clock_skew_suspected"] is True
    assert await relay.metric("pingpong_clock_skew_messages_total") == 1
    logged = await relay.wait_for("clock_skew")
    assert logged["level"] == "INFO"
    assert (logged["bot"], logged["messages"]) == ("bot:pingpong/bot", 1)
    assert logged["transit_ms"] > 1.5e12
    await client.close()


async def test_a_bad_rules_file_stops_serve_with_a_clear_message(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nkind = "latency"\nwindow = "2m"\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingpong_relay",
        "serve",
        "--alert-rules",
        str(rules),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert "--alert-rules" in err.decode()
    assert "window" in err.decode()


async def test_rules_from_a_toml_file_drive_the_alerts(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nname = "gate-slow"\nkind = "latency"\nwindow = "1m"\npercentile = "p50"\n'
        'threshold_ms = 50\nfor = "0s"\nbots = ["*/gate"]\n'
    )
    relay = await start_relay(redis_server.url, *FAST, "--alert-rules", str(rules))
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=alerts")
    await relay.wait_for("client_connected")
    await redis_server.publish(_beat(latency=80, source="okx"))
    await _establish(redis_server, latency=80, source="gate")
    firing = await _next(watcher, "bot:alert", state="firing")
    assert (firing["rule"], firing["bot"]) == ("gate-slow", "bot:pingpong/gate")
    # No silence rule in the file: nothing about silence, ever.
    assert all(m.get("rule") == "gate-slow" for m in watcher.messages)
    await watcher.close()


async def test_bots_are_not_judged_silent_while_the_relay_cannot_hear_redis(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, *FAST, "--reconnect-max-delay", "0.3", "--redis-health-interval", "1"
    )
    await _establish(redis_server)
    await relay.wait_for(lambda r: r.get("event") == "bot_status" and r["status"] == "up")

    redis_server.kill()
    await relay.wait_for("silence_checks_paused")
    # Far longer than silence timeout + grace (1.2 s): ~2 s of retries at ≤ 0.3 s each.
    await relay.wait_for("redis_retry", count=9)
    statuses = [r["status"] for r in relay.events("bot_status")]
    assert statuses == ["up"], "a bot was judged by the relay's own deafness"
    assert not relay.events("alert")

    await redis_server.start()
    await relay.wait_for("silence_checks_resumed")
    # The bot really is silent, so it goes pending, but counted from the relay's recovery.
    pending = await relay.wait_for(
        lambda r: r.get("event") == "bot_status" and r["status"] == "pending"
    )
    resumed = relay.events("silence_checks_resumed")[0]
    assert pending["time"] > resumed["time"]


async def test_a_relay_started_while_a_bot_is_silent_still_finds_it_down(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    first = await start_relay(redis_server.url, "--log-level", "DEBUG")
    await _establish(redis_server)
    # A bot heard once stays on probation, in the history as in the relay.
    await redis_server.publish(_beat(source="once"))
    await first.wait_for("history_recorded", count=4)
    await first.stop()
    # The bot says nothing more; a new relay (a restart, a restarted worker) comes up.
    second = await start_relay(redis_server.url, *FAST)
    seeded = await second.wait_for("bots_seeded")
    assert seeded["bots"] == 1
    down = await second.wait_for(
        lambda r: r.get("event") == "bot_status" and r.get("status") == "down"
    )
    assert down["bot"] == "bot:pingpong/bot"
    await second.wait_for(lambda r: r.get("event") == "alert" and r.get("state") == "firing")
    status, body = await second.get("/bots")
    assert status == 200
    assert list(orjson.loads(body)["bots"]) == ["bot:pingpong/bot"]
    assert orjson.loads(body)["bots"]["bot:pingpong/bot"]["status"] == "down"
