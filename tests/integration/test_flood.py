"""A flood of made-up bot ids against a real relay and redis-server: real bots stay monitored."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from pingpong_relay.redis_io.history import BOTS_KEY, ESTABLISHED_KEY, FIRST_KEY, stream_key
from tests.support import (
    FAST_SILENCE,
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    WebhookReceiver,
    publish_established,
)

REAL = "bot:pingpong/real"
FAST = (*FAST_SILENCE, "--webhook-lease", "1")


_SEQ = itertools.count()


def _beat(source: str, n: int = 0, latency: float = 20) -> bytes:
    # Distinct payloads (`n` is for publish_established's calls; `seq` makes every one
    # differ): the history takes a repeat within a minute as one message.
    return orjson.dumps(
        {
            "type": "ping",
            "latency": latency,
            "timestamp": time.time_ns() // 1_000_000,
            "source": source,
            "seq": next(_SEQ),
            "n": n,
        }
    )


async def _flood(redis_server: RedisServer, count: int, prefix: str = "junk") -> None:
    """`count` one-message bot ids, published in pipelines of 500 (slow enough to hurt)."""
    client = aioredis.from_url(redis_server.url)
    try:
        for start in range(0, count, 500):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(count, start + 500)):
                pipe.publish("bot:pingpong", _beat(f"{prefix}{i}", latency=5000))
            await pipe.execute()
    finally:
        await client.aclose()


async def _metric_at_least(relay: RelayProcess, name: str, value: float) -> None:
    async def wait() -> None:
        while True:
            if await relay.metric(name) >= value:
                return
            await asyncio.sleep(0.1)  # the relay's own counter, polled: bounded below

    await asyncio.wait_for(wait(), 30)


def _bot_labels(metrics: str) -> set[str]:
    return {
        line.split('bot="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if not line.startswith("#") and 'bot="' in line
    }


async def test_a_flood_of_one_message_bots_does_not_starve_a_real_bot(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    relay = await start_relay(
        redis_server.url, *FAST, "--max-bots", "50", "--webhook-url", webhook.url
    )
    await _flood(redis_server, 2000)
    await _metric_at_least(relay, "pingpong_messages_forwarded_total", 2000)
    # Every slot was taken by junk; each newcomer evicted the least recent of them.
    assert await relay.metric("pingpong_bots_evicted_total") == 1950
    assert await relay.metric("pingpong_bot_messages_untracked_total") == 0
    evicted = await relay.wait_for("bots_evicted")
    assert evicted["level"] == "WARNING"

    # A real bot arrives after the flood: tracked, with a status and statistics.
    await publish_established(redis_server, lambda n: _beat("real", n))
    await relay.wait_for(lambda r: r.get("event") == "bot_status" and r.get("bot") == REAL)
    await _metric_at_least(relay, "pingpong_messages_forwarded_total", 2003)
    status, body = await relay.get("/bots")
    assert status == 200
    bots = orjson.loads(body)["bots"]
    assert REAL in bots  # up, or already pending: it has stopped by now
    assert len(bots) == 50
    status, body = await relay.get(f"/stats?window=1m&bot={REAL}")
    assert status == 200
    assert orjson.loads(body)["bots"][REAL]["count"] == 3
    _, metrics = await relay.get("/metrics")
    labelled = _bot_labels(metrics.decode())
    assert REAL in labelled
    assert labelled == {REAL}  # bots on probation have no series to leave behind

    # It stops: its silence alert fires and is posted; no junk id ever paged anyone,
    # although each was slow (latency 5 s) and went silent at once.
    await webhook.wait_for("silence", REAL, "firing")
    assert {alert["bot"] for alert in webhook.alerts} == {REAL}


async def test_history_streams_expire_with_the_retention_and_leave_the_index(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--history-retention", "3s", "--log-level", "DEBUG")
    await redis_server.publish(_beat("once"))
    await publish_established(redis_server, lambda n: _beat("real", n))
    await relay.wait_for("history_recorded", count=4)
    client = aioredis.from_url(redis_server.url)
    try:
        once = "bot:pingpong/once"
        assert 0 < await client.pttl(stream_key(once)) <= 3000
        assert 0 < await client.pttl(stream_key(REAL)) <= 3000
        assert await client.zscore(BOTS_KEY, once) is not None
        assert await client.zscore(ESTABLISHED_KEY, once) is None
        assert await client.zscore(ESTABLISHED_KEY, REAL) is not None

        async def gone(key: str) -> None:
            while True:
                if not await client.exists(key):
                    return
                await asyncio.sleep(0.1)  # Redis's own expiry, polled: bounded below

        # The one-message stream disappears after the retention, with nothing appended.
        await asyncio.wait_for(gone(stream_key(once)), 10)
        # Within a prune interval (10 s) it leaves the index and FIRST_KEY too; so does the
        # established bot, silent as long, except for its FIRST_KEY entry (rollups use it).
        pruned = await relay.wait_for("history_pruned", timeout=20)
        assert pruned["bots"] == 2
        assert await client.zscore(BOTS_KEY, once) is None
        assert await client.hget(FIRST_KEY, once) is None
        assert await client.zscore(ESTABLISHED_KEY, REAL) is None
        assert await client.hget(FIRST_KEY, REAL) is not None
    finally:
        await client.aclose()


async def _alerts_for(webhook: WebhookReceiver, bots: Sequence[str]) -> list[tuple[str, str]]:
    return [(a["bot"], a["state"]) for a in webhook.alerts if a["bot"] in bots]


async def test_a_restart_after_a_flood_seeds_only_established_bots_and_pages_nobody_again(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    args = (*FAST, "--max-bots", "50", "--webhook-url", webhook.url)
    first = await start_relay(redis_server.url, *args)
    await publish_established(redis_server, lambda n: _beat("real", n))
    await _flood(redis_server, 500)
    await _metric_at_least(first, "pingpong_history_recorded_total", 503)
    # The real bot goes silent: pending, then firing, each posted once.
    await webhook.wait_for("silence", REAL, "firing")
    await first.stop()  # the lease notes what it sent as it stops
    assert await _alerts_for(webhook, [REAL]) == [(REAL, "pending"), (REAL, "firing")]

    second = await start_relay(redis_server.url, *args)
    seeded = await second.wait_for("bots_seeded")
    assert seeded["bots"] == 1  # not the 500 made-up ids
    assert seeded["alerts_restored"] == 1
    _, body = await second.get("/bots")
    assert {bot: s["status"] for bot, s in orjson.loads(body)["bots"].items()} == {REAL: "down"}
    # A bot new to this relay goes silent and is paged; by then any alert the restart
    # would have re-fired (0.6 s + 0.6 s after it) would have been posted too.
    await publish_established(redis_server, lambda n: _beat("fresh", n))
    await webhook.wait_for("silence", "bot:pingpong/fresh", "firing")
    assert {a["bot"] for a in webhook.alerts} == {REAL, "bot:pingpong/fresh"}
    assert await _alerts_for(webhook, [REAL]) == [(REAL, "pending"), (REAL, "firing")]
    # The real bot comes back: the alert taken over resolves, as one that had fired.
    await redis_server.publish(_beat("real", 9))
    resolved = await webhook.wait_for("silence", REAL, "resolved")
    assert resolved["fired"] is True


async def test_bots_long_gone_are_forgotten_and_not_brought_back(
    redis_server: RedisServer, start_relay: RelayFactory, webhook: WebhookReceiver
) -> None:
    args = (*FAST, "--forget-after", "4s", "--webhook-url", webhook.url)
    first = await start_relay(redis_server.url, *args)
    await publish_established(redis_server, lambda n: _beat("real", n))
    await webhook.wait_for("silence", REAL, "firing")
    forgotten = await first.wait_for("bots_forgotten")
    assert forgotten["bots"] == 1
    _, body = await first.get("/bots")
    assert orjson.loads(body)["bots"] == {}
    _, metrics = await first.get("/metrics")
    assert REAL not in _bot_labels(metrics.decode())
    await first.stop()

    second = await start_relay(redis_server.url, *args)
    seeded = await second.wait_for("bots_seeded")
    assert seeded["bots"] == 0
    _, body = await second.get("/bots")
    assert orjson.loads(body)["bots"] == {}
    # Nothing about it was posted after the firing: no resolution, no re-fire.
    assert await _alerts_for(webhook, [REAL]) == [(REAL, "pending"), (REAL, "firing")]


async def test_accept_bots_rejects_counts_and_logs_other_bots_once_per_interval(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url,
        "--accept-bots",
        "bot:pingpong/gate-*",
        "--accept-bots",
        "bot:other/*",
        "--log-level",
        "DEBUG",
    )
    watcher = Collector()
    await watcher.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    for n in range(3):
        await redis_server.publish(_beat("okx", n))
    await redis_server.publish(_beat("gate-1"))
    [heartbeat] = await watcher.wait_count(1)
    assert heartbeat["data"]["source"] == "gate-1"
    await relay.wait_for("history_recorded")
    assert await relay.metric('pingpong_messages_rejected_total{reason="bot_not_accepted"}') == 3
    assert await relay.metric("pingpong_messages_forwarded_total") == 1
    [logged] = relay.events("bot_not_accepted")
    assert (logged["level"], logged["bot"], logged["messages"]) == (
        "WARNING",
        "bot:pingpong/okx",
        1,
    )
    _, body = await relay.get("/bots")
    assert list(orjson.loads(body)["bots"]) == ["bot:pingpong/gate-1"]
    client = aioredis.from_url(redis_server.url)
    try:
        assert not await client.exists(stream_key("bot:pingpong/okx"))
        assert await client.exists(stream_key("bot:pingpong/gate-1"))
    finally:
        await client.aclose()
    assert len(watcher.messages) == 1
    await watcher.close()


async def test_rollups_expire_and_the_state_of_bots_gone_is_dropped(
    redis_server: RedisServer,
) -> None:
    from pingpong_relay.redis_io.rollup_store import (
        CURSOR_KEY,
        HOURS_KEPT_MS,
        HOURS_PREFIX,
        MINUTES_PREFIX,
        MINUTES_TTL_MS,
        PRUNED_KEY,
        RollupStore,
    )

    client = aioredis.from_url(redis_server.url)
    try:
        seconds, _ = await client.time()
        now_ms = int(seconds) * 1000
        times = range(now_ms - 2 * 3_600_000, now_ms - 120_000, 60_000)
        pipe = client.pipeline(transaction=False)
        for n, at in enumerate(times):
            raw = orjson.dumps({"type": "ping", "latency": 10})
            pipe.xadd(
                stream_key(REAL),
                {"channel": "bot:pingpong", "relay_ms": at, "seq": n, "raw": raw},
                id=f"{at}-0",
            )
        for key in (BOTS_KEY, ESTABLISHED_KEY):
            pipe.zadd(key, {REAL: times[-1]})
        pipe.hset(FIRST_KEY, REAL, f"{times[0]}-0")
        # Left behind by bots gone from the history: one established and rolled up long
        # ago, one that never was.
        long_ago = now_ms - HOURS_KEPT_MS - 3_600_000
        pipe.hset(CURSOR_KEY, "gone", str(long_ago))
        pipe.hset(PRUNED_KEY, "gone", str(long_ago))
        pipe.hset(FIRST_KEY, "gone", f"{long_ago}-0")
        pipe.hset(FIRST_KEY, "never", f"{now_ms}-0")
        await pipe.execute()

        store = RollupStore(client)
        assert await store.roll_up() > 0
        assert 0 < await client.pttl(MINUTES_PREFIX + REAL) <= MINUTES_TTL_MS
        assert 0 < await client.pttl(HOURS_PREFIX + REAL) <= HOURS_KEPT_MS
        # The first pass also kept house: the bots gone lost their fields, REAL kept its.
        for key in (CURSOR_KEY, PRUNED_KEY, FIRST_KEY):
            assert await client.hget(key, "gone") is None
        assert await client.hget(FIRST_KEY, "never") is None
        assert await client.hget(CURSOR_KEY, REAL) is not None
        assert await client.hget(FIRST_KEY, REAL) is not None
        # Nothing new: the next pass writes nothing.
        assert await store.roll_up() == 0
    finally:
        await client.aclose()
