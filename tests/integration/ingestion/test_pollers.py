"""--poll end to end: a real relay polls a loopback freqtrade (or any URL), and a real
WebSocket client sees the verdicts as heartbeats and bot statuses."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import jsonschema
import orjson

from pingpong_relay.asyncapi import asyncapi
from tests.support import (
    FAST_SILENCE,
    Collector,
    FakeFreqtrade,
    RedisServer,
    RelayFactory,
    RelayProcess,
)

FT1 = "bot:pingpong/ft1"
POLLED = 'pingpong_ingest_accepted_total{via="poll"}'


def _poll(name: str, url: str, *options: str) -> tuple[str, str]:
    return "--poll", " ".join((f"{name}={url}", *options))


def _ft_options(freqtrade: FakeFreqtrade, timeout: str = "0.25s") -> tuple[str, ...]:
    # The credentials as options, verbatim (the URL form is percent-encoded: another test).
    return (
        "mode=freqtrade",
        "interval=0.3s",
        f"timeout={timeout}",
        "stale=1m",
        f"user={freqtrade.user}",
        f"password={freqtrade.password}",
    )


async def _next(
    client: Collector, match: Callable[[dict[str, Any]], bool], start: int = 0
) -> tuple[int, dict[str, Any]]:
    """The first message at or after index `start` that `match`es, and its index (within
    20 s: messages that keep coming but never match must not wait forever)."""

    async def scan() -> tuple[int, dict[str, Any]]:
        index = start
        while True:
            messages = await client.wait_count(index + 1)
            if match(messages[index]):
                return index, messages[index]
            index += 1

    return await asyncio.wait_for(scan(), 20)


def _beat_of(source: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "bot:pingpong" and m["data"]["source"] == source


def _status(bot: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "bot:status" and m["bot"] == bot and m["status"] == status


async def _watch(relay: RelayProcess) -> Collector:
    """A client of the data plane that also hears bot statuses."""
    client = Collector()
    await client.connect(relay.ws_url + "?events=pingpong,status")
    await relay.wait_for("client_connected")
    return client


async def test_a_freqtrade_target_goes_slow_stale_and_down_and_recovers(
    redis_server: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> None:
    relay = await start_relay(
        redis_server.url, *FAST_SILENCE, *_poll("ft1", freqtrade.url, *_ft_options(freqtrade))
    )
    client = await _watch(relay)

    # Up: the poll's heartbeat is the design's envelope, from ft1, via the poller, with the
    # ping's round trip as the latency; the bot is up.
    _, envelope = await _next(client, lambda m: m["type"] == "bot:pingpong")
    assert list(envelope) == ["type", "data", "timestamp", "source"]
    assert (envelope["source"], envelope["data"]["source"]) == ("bot", "ft1"), envelope
    assert envelope["data"]["via"] == "poll"
    assert envelope["data"]["type"] == "pong"
    assert 0 < envelope["data"]["latency"] < 250
    assert "status" not in envelope["data"]
    at, _ = await _next(client, _status(FT1, "up"))
    assert ("/api/v1/health", "Basic ") in {(p, a[:6]) for p, a in freqtrade.requests}

    # Slow: no answer within the timeout is down, with the reason.
    freqtrade.slow_s, freqtrade.behaviour = 1.0, "slow"
    at, down = await _next(client, _status(FT1, "down"), at)
    assert "no answer within 0.25s" in down["reason"], down
    status, body = await relay.get("/bots")
    assert status == 200
    shown = orjson.loads(body)["bots"][FT1]
    assert (shown["status"], shown["reason"]) == ("down", down["reason"])

    freqtrade.behaviour = "healthy"
    at, _ = await _next(client, _status(FT1, "up"), at)

    # Stale: its last process 7 minutes ago, past stale=1m, is degraded.
    freqtrade.stale_age_s, freqtrade.behaviour = 420, "stale"
    at, degraded = await _next(client, _status(FT1, "degraded"), at)
    assert "last process 7m ago (stale after 1m)" in degraded["reason"], degraded

    freqtrade.behaviour = "healthy"
    at, _ = await _next(client, _status(FT1, "up"), at)

    # Stopped: the connection is refused, in the OS's words.
    await freqtrade.stop()
    at, down = await _next(client, _status(FT1, "down"), at)
    assert "cannot connect: Connection refused" in down["reason"], down

    await freqtrade.start()
    await _next(client, _status(FT1, "up"), at)
    # Failures were logged once per change of state, not once per poll.
    await relay.wait_for("poll_state", count=7)
    changes = [r["status"] for r in relay.events("poll_state")]
    assert changes == ["up", "down", "up", "degraded", "up", "down", "up"], changes
    await client.close()


async def test_credentials_from_the_url_and_refused_ones_are_never_shown(
    redis_server: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> None:
    user_info = f"{quote(freqtrade.user)}:{quote(freqtrade.password, safe='')}@"
    good = freqtrade.url.replace("http://", f"http://{user_info}")
    wrong_password = "not-the-password-x7"
    bad = f"http://{freqtrade.user}:{wrong_password}@127.0.0.1:{freqtrade.port}"
    options = ("mode=freqtrade", "interval=0.3s", "timeout=0.25s")
    relay = await start_relay(
        redis_server.url,
        *FAST_SILENCE,
        *_poll("good", good, *options),
        *_poll("bad", bad, *options),
    )
    client = await _watch(relay)
    await _next(client, _status("bot:pingpong/good", "up"))
    _, refused = await _next(client, _status("bot:pingpong/bad", "down"))
    assert "freqtrade refused the credentials (401)" in refused["reason"]

    _, body = await relay.get("/bots")
    everything = "\n".join([*relay.raw_lines, *client.raw, body.decode()])
    for secret in (freqtrade.password, quote(freqtrade.password, safe=""), wrong_password):
        assert secret not in everything
    await client.close()


async def test_a_generic_target_is_up_on_2xx_and_down_otherwise_and_a_stuck_one_delays_none(
    redis_server: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> None:
    async with FakeFreqtrade() as stuck:
        stuck.slow_s, stuck.behaviour = 30.0, "slow"
        relay = await start_relay(
            redis_server.url,
            *FAST_SILENCE,
            *_poll("web", freqtrade.url + "/api/v1/ping", "interval=0.2s", "timeout=0.2s"),
            *_poll("stuck", stuck.url, "interval=20s", "timeout=20s"),
        )
        client = await _watch(relay)
        at, _ = await _next(client, _status("bot:pingpong/web", "up"))
        # While "stuck" has not answered its first poll, "web" is polled every 0.2 s.
        started = time.monotonic()
        beats = []
        for _ in range(5):
            at, beat = await _next(client, _beat_of("web"), at + 1)
            beats.append(beat)
        assert time.monotonic() - started < 5
        assert all(isinstance(b["data"]["latency"], float | int) for b in beats)
        assert not any(_beat_of("stuck")(m) for m in client.messages)

        freqtrade.behaviour = "broken"
        _, down = await _next(client, _status("bot:pingpong/web", "down"), at)
        assert "HTTP 500: Internal Server Error" in down["reason"], down
        assert "second line" not in down["reason"]
        await client.close()


async def test_one_of_two_relays_polls_and_a_survivor_takes_over(
    redis_server: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> None:
    args = (*_poll("ft1", freqtrade.url, *_ft_options(freqtrade)), "--poll-lease", "1")
    relays = [await start_relay(redis_server.url, *args) for _ in range(2)]
    starts = [
        asyncio.create_task(r.wait_for(lambda e: e.get("event") == "polling_started"))
        for r in relays
    ]
    done, pending = await asyncio.wait(starts, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    holder = relays[starts.index(done.pop())]
    other = relays[1] if holder is relays[0] else relays[0]

    await holder.metric_until(POLLED, lambda v: v >= 5, 15)
    assert await other.metric(POLLED) == 0
    assert not other.events("polling_started")
    assert (await holder.health())["pollers"] == {"targets": 1, "polling": True}
    assert (await other.health())["pollers"] == {"targets": 1, "polling": False}
    # Watchers of the relay's own state hear it too, as the protocol describes.
    watcher = Collector()
    await watcher.connect(other.ws_url + "?events=relay")
    _, state = await _next(watcher, lambda m: m["type"] == "relay:state")
    jsonschema.validate(state, asyncapi()["components"]["schemas"]["RelayState"])
    assert state["pollers"] == {"targets": 1, "polling": False}
    await watcher.close()

    # The holder dies without a word: within the lease's TTL (1 s) the other polls.
    assert holder.process is not None
    killed_at = time.monotonic()
    os.kill(holder.process.pid, signal.SIGKILL)
    await other.wait_for(lambda e: e.get("event") == "polling_started", timeout=10)
    assert time.monotonic() - killed_at < 1 + 1.5
    await other.metric_until(POLLED, lambda v: v > 0, 15)
