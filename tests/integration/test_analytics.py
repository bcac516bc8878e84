"""Availability analytics from rollups, checked against a brute-force computation."""

from __future__ import annotations

import math

import orjson
import pytest
import redis.asyncio as aioredis

from pingpong_relay.redis_io.history import BOTS_KEY, ESTABLISHED_KEY, FIRST_KEY, stream_key
from tests.support import RedisServer, RelayFactory

BOT = "bot:pingpong/gate"
SILENCE_MS = 30_000


async def _load(redis_server: RedisServer) -> list[tuple[int, float]]:
    """3 hours of one message a second, with a 10 min and a 45 s outage and a 20 s hiccup."""
    client = aioredis.from_url(redis_server.url)
    seconds, _ = await client.time()
    now_ms = int(seconds) * 1000
    t0 = now_ms - 3 * 3_600_000
    holes = [
        (t0 + 30 * 60_000, t0 + 40 * 60_000),
        (t0 + 100 * 60_000, t0 + 100 * 60_000 + 45_000),
        (t0 + 150 * 60_000, t0 + 150 * 60_000 + 20_000),
    ]
    messages: list[tuple[int, float]] = []
    pipe = client.pipeline(transaction=False)
    for n, at in enumerate(range(t0, now_ms - 10_000, 1000)):
        if any(a <= at < b for a, b in holes):
            continue
        latency = 20 + (n * 7919) % 300 / 3
        messages.append((at, latency))
        raw = orjson.dumps({"type": "ping" if n % 2 else "pong", "latency": latency})
        pipe.xadd(
            stream_key(BOT),
            {"channel": "bot:pingpong", "relay_ms": at, "seq": n, "raw": raw},
            id=f"{at}-0",
        )
    for key in (BOTS_KEY, ESTABLISHED_KEY):
        pipe.zadd(key, {BOT: messages[-1][0]})
    pipe.hset(FIRST_KEY, BOT, f"{messages[0][0]}-0")
    await pipe.execute()
    await client.aclose()
    return messages


def _brute_force(messages: list[tuple[int, float]], now_ms: int) -> tuple[float, list[int]]:
    """Availability % and outage starts, straight from the message times."""
    times = [at for at, _ in messages]
    silent = 0
    starts = []
    for before, after in zip([*times], [*times[1:], None], strict=True):
        end = after if after is not None else now_ms
        if end - before > SILENCE_MS:
            silent += end - (before + SILENCE_MS)
            starts.append(before + SILENCE_MS)
    observed = now_ms - times[0]
    return 100 * (1 - silent / observed), starts


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


async def test_analytics_match_a_brute_force_computation_and_survive_a_restart(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    messages = await _load(redis_server)
    for attempt in range(2):  # the second relay starts from what the first left in Redis
        relay = await start_relay(redis_server.url, "--log-level", "DEBUG")
        await relay.wait_for("rollup_pass")
        status, body = await relay.get(f"/analytics?bot={BOT}&window=24h")
        assert status == 200
        result = orjson.loads(body)
        availability, starts = _brute_force(messages, result["to_ms"])
        assert result["availability_pct"] == pytest.approx(availability, abs=0.01)
        assert [o["start_ms"] for o in result["outages"]] == starts
        assert result["outage_count"] == 2
        # Holes of 600 s and 45 s between messages a second apart: gaps of 601 s and 46 s.
        assert [round(o["duration_s"]) for o in result["outages"]] == [571, 16]
        assert result["messages"]["count"] == len(messages)
        latencies = [latency for _, latency in messages]
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
            exact = _nearest_rank(latencies, q)
            assert abs(result["latency_ms"][name] - exact) <= 0.025 * exact, (attempt, name)
        await relay.stop()


async def test_analytics_reports_an_ongoing_outage_and_refuses_bad_queries(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    client = aioredis.from_url(redis_server.url)
    seconds, _ = await client.time()
    now_ms = int(seconds) * 1000
    last = now_ms - 120_000  # silent for the last two minutes
    for at in range(last - 600_000, last + 1, 1000):
        await client.xadd(
            stream_key(BOT),
            {"channel": "c", "relay_ms": at, "seq": 0, "raw": b'{"type":"ping","latency":5}'},
            id=f"{at}-0",
        )
    for key in (BOTS_KEY, ESTABLISHED_KEY):
        await client.zadd(key, {BOT: last})
    await client.hset(FIRST_KEY, BOT, f"{last - 600_000}-0")
    await client.aclose()
    relay = await start_relay(redis_server.url, "--log-level", "DEBUG")
    await relay.wait_for("rollup_pass")
    status, body = await relay.get(f"/analytics?bot={BOT}&window=1h")
    result = orjson.loads(body)
    [outage] = result["outages"]
    assert outage["ongoing"] is True
    assert outage["start_ms"] == last + SILENCE_MS
    assert result["availability_pct"] < 100
    for query, code in (("window=24h", 400), (f"bot={BOT}&window=2d", 400)):
        status, body = await relay.get(f"/analytics?{query}")
        assert status == code
        assert orjson.loads(body)["message"]


async def test_minute_rollups_older_than_two_days_are_pruned_and_hours_kept(
    redis_server: RedisServer,
) -> None:
    from pingpong_relay.redis_io.rollup_store import HOURS_PREFIX, MINUTES_PREFIX, RollupStore

    client = aioredis.from_url(redis_server.url)
    seconds, _ = await client.time()
    now_ms = int(seconds) * 1000
    hour = now_ms - now_ms % 3_600_000
    old = [hour - 50 * 3_600_000 + m * 60_000 for m in range(120)]  # ~50 h ago, 2 hours
    recent = [hour - 3_600_000 + m * 60_000 for m in range(60)]
    await client.hset(MINUTES_PREFIX + BOT, mapping={str(m): b"{}" for m in old + recent})
    await client.hset(HOURS_PREFIX + BOT, str(hour - 50 * 3_600_000), b"{}")
    for key in (BOTS_KEY, ESTABLISHED_KEY):
        await client.zadd(key, {BOT: recent[-1]})
    store = RollupStore(client)
    await store.roll_up()
    left = {int(m) for m in await client.hkeys(MINUTES_PREFIX + BOT)}
    assert left == set(recent)
    assert await client.hexists(HOURS_PREFIX + BOT, str(hour - 50 * 3_600_000))
    await client.aclose()
