"""What every part of `bench.run` shares: publishing, one measured round, connecting clients."""

from __future__ import annotations

import asyncio
import fnmatch
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

from .procs import BenchError, ClientFleet, RelayProcess, RssSampler

CHANNEL = "bot:pingpong"
SOURCE = "bot"
CONNECT_TIMEOUT_S = 120.0
ANALYSIS_TIMEOUT_S = 120.0
# How long the relay may take to count the clients that connected.
SETTLE_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """A connect-time query and, written out independently of the relay, what it lets through.

    The expectation is not computed with the relay's own filter code, so a bug there shows
    up as lost or unexpected deliveries rather than being mirrored here.
    """

    label: str
    query: str
    kinds: frozenset[str] | None = None  # None: every type
    bot_pattern: str | None = None  # shell-style pattern on "<channel>/<source>"; None: all

    def wants(self, channel: str, kind: str) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.bot_pattern is None or fnmatch.fnmatchcase(
            f"{channel}/{SOURCE}", self.bot_pattern
        )


@dataclass(slots=True)
class Published:
    count: int
    unheard: int
    first_sent_ns: int
    elapsed_s: float
    messages: list[tuple[str, str]] = field(default_factory=list)  # (channel, type) by seq

    @property
    def rate(self) -> float:
        return self.count / self.elapsed_s if self.elapsed_s > 0 else math.nan


def message_of(seq: int, channels: Sequence[str]) -> tuple[str, str]:
    """(channel, type) of message `seq`: ping/pong alternate, and each bot gets a ping and
    then a pong in turn, so that no type filter selects the same messages as a bot filter."""
    return channels[(seq // 2) % len(channels)], "ping" if seq % 2 == 0 else "pong"


def _payload(seq: int, round_id: int, kind: str, sent_ns: int) -> bytes:
    return orjson.dumps(
        {
            "type": kind,
            "latency": 12.3,
            "timestamp": sent_ns // 1_000_000,
            "source": SOURCE,
            "seq": seq,
            "round": round_id,
            "sent_ns": sent_ns,
        }
    )


async def publish(
    bot: aioredis.Redis,
    round_id: int,
    rate: float,
    count: int,
    time_limit_s: float,
    channels: Sequence[str] = (CHANNEL,),
) -> Published:
    """Publish `count` valid bot messages at `rate`, never skipping one to catch up."""
    loop = asyncio.get_running_loop()
    interval_s = 1.0 / rate
    start = loop.time()
    first_sent_ns = 0
    unheard = 0
    published = 0
    messages: list[tuple[str, str]] = []
    last_start = start
    for seq in range(count):
        now = loop.time()
        if now - start > time_limit_s:
            break
        target = start + seq * interval_s
        if target > now:
            await asyncio.sleep(target - now)
        last_start = loop.time()
        sent_ns = time.time_ns()
        first_sent_ns = first_sent_ns or sent_ns
        channel, kind = message_of(seq, channels)
        receivers = int(await bot.publish(channel, _payload(seq, round_id, kind, sent_ns)))
        unheard += receivers == 0
        published += 1
        messages.append((channel, kind))
    # `published` slots of one interval each: exactly count/rate when on schedule.
    elapsed_s = last_start - start + interval_s
    return Published(published, unheard, first_sent_ns, elapsed_s, messages)


async def publish_burst(
    bot: aioredis.Redis, round_id: int, count: int, channel: str = CHANNEL
) -> Published:
    """`count` messages in one pipeline (one write of every PUBLISH, then the replies).

    Every message carries the same `sent_ns`, taken before the payloads are built (about
    1 ms for 1,000), so a delivery's latency is its time since the burst began.
    """
    sent_ns = time.time_ns()
    started = time.perf_counter()
    messages = [(channel, message_of(seq, (channel,))[1]) for seq in range(count)]
    async with bot.pipeline(transaction=False) as pipe:
        for seq, (_, kind) in enumerate(messages):
            pipe.publish(channel, _payload(seq, round_id, kind, sent_ns))
        replies = await pipe.execute()
    elapsed_s = time.perf_counter() - started
    unheard = sum(int(receivers) == 0 for receivers in replies)
    return Published(count, unheard, sent_ns, elapsed_s, messages)


def histogram_quantile_ms(
    before: dict[str, float], after: dict[str, float], name: str, fraction: float
) -> float:
    """Upper bound (ms) of the bucket holding the `fraction` quantile of a histogram's delta.

    Bucket resolution only: the answer is "at most this". NaN with no observations,
    inf when the quantile lies beyond the last finite bucket.
    """
    prefix = f"{name}_bucket:"
    bounds = sorted(
        (float(key[len(prefix) :]), after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith(prefix)
    )
    total = bounds[-1][1] if bounds else 0.0
    if total <= 0:
        return math.nan
    for bound, cumulative in bounds:
        if cumulative >= fraction * total:
            return bound * 1e3
    return math.inf


METRIC_COUNTERS = {
    "forwarded": "pingpong_messages_forwarded_total",
    "deliveries": "pingpong_deliveries_total",
    "send_failures": "pingpong_send_failures_total",
    "slow_client_closes": "pingpong_slow_client_closes_total",
    "conflated": "pingpong_conflated_total",
}


def metric_deltas(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, float]:
    """The relay's /metrics over a round; NaN everywhere when either reading failed."""
    if before is None or after is None:
        return {
            **{key: math.nan for key in METRIC_COUNTERS},
            "broadcast_mean_ms": math.nan,
            "broadcast_p50_ms_bucket": math.nan,
            "broadcast_p99_ms_bucket": math.nan,
        }

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    histogram = "pingpong_relay_latency_seconds"
    broadcasts = delta(f"{histogram}_count")
    return {
        **{key: delta(name) for key, name in METRIC_COUNTERS.items()},
        "broadcast_mean_ms": (
            delta("pingpong_relay_latency_seconds_sum") / broadcasts * 1e3
            if broadcasts
            else math.nan
        ),
        "broadcast_p50_ms_bucket": histogram_quantile_ms(before, after, histogram, 0.50),
        "broadcast_p99_ms_bucket": histogram_quantile_ms(before, after, histogram, 0.99),
    }


async def run_round(
    relay: RelayProcess,
    fleet: ClientFleet,
    bot: aioredis.Redis,
    run_dir: Path,
    *,
    round_id: int,
    rate: float,
    duration_s: float,
    drain_s: float,
    channels: Sequence[str] = (CHANNEL,),
    filters: Sequence[ClientFilter] | None = None,
    burst: int = 0,
    watch_peak: bool = False,
) -> dict[str, Any]:
    """One publishing phase against connected clients; latency, loss and relay CPU of it.

    With `filters` (one per client group, in the fleet's group order) each group is
    checked against the subset of what was published that its filter lets through.
    With `burst` > 0 that many messages go out in one pipeline instead of at `rate`.
    With `watch_peak` the relay's peak RSS over the round is measured twice: VmHWM reset
    before the first publish and read once the clients have everything, and RSS sampled
    every 10 ms in between.
    """
    planned = burst or max(1, round(rate * duration_s))
    # A conflating relay may add a notice frame now and then: room for a few.
    await fleet.arm(round_id, planned + 16)
    metrics_before = await relay.metrics()
    sampler: RssSampler | None = None
    peak_reset = False
    rss_start = 0
    if watch_peak:
        peak_reset = relay.reset_peak_rss()
        rss_start = relay.rss_bytes()
        sampler = RssSampler([process.pid for process in relay.tree()])
        sampler.start()
    cpu_before = relay.cpu_times()
    if burst:
        published = await publish_burst(bot, round_id, burst, channels[0])
    else:
        published = await publish(bot, round_id, rate, planned, duration_s * 1.5 + 2.0, channels)
    out = run_dir / f"round-{os.getpid()}-{time.monotonic_ns()}.json"
    collect: dict[str, Any] = {
        "cmd": "collect",
        "round": round_id,
        "count": published.count,
        "timeout_s": drain_s,
    }
    if filters is not None:
        collect["wanted"] = [
            [int(f.wants(channel, kind)) for channel, kind in published.messages] for f in filters
        ]
    # Relay CPU is read as soon as the clients hold everything (or gave up waiting), so the
    # client's parsing that follows does not stretch the window.
    all_received = await fleet.collect(collect, out, drain_s + 30.0)
    cpu_after = relay.cpu_times()
    peaks: dict[str, Any] = {}
    if sampler is not None:
        sampled = sampler.stop()
        hwm = relay.peak_rss_bytes() if peak_reset else 0
        peaks = {
            "rss_start_kb": rss_start / 1024,
            "rss_end_kb": relay.rss_bytes() / 1024,
            "peak_rss_sampled_kb": sampled / 1024,
            "rss_samples": sampler.samples,
            "peak_rss_hwm_kb": hwm / 1024 if peak_reset else math.nan,
            "peak_rss_kb": max(sampled, hwm) / 1024,
        }
    cpu_user_s = cpu_after[0] - cpu_before[0]
    cpu_system_s = cpu_after[1] - cpu_before[1]
    cpu_s = cpu_user_s + cpu_system_s
    analysis = await fleet.analysis(out, ANALYSIS_TIMEOUT_S)
    metrics_after = await relay.metrics()
    delivered = int(analysis["delivered"])
    span_s = (analysis["last_received_ns"] - published.first_sent_ns) / 1e9
    latency = analysis["latency_ms"]
    return {
        "round": round_id,
        "rate": published.rate if burst else rate,
        "duration_s": published.elapsed_s if burst else duration_s,
        "drain_s": drain_s,
        "burst": burst,
        "published": published.count,
        "planned": planned,
        "publish_rate": published.rate,
        "publish_s": published.elapsed_s,
        "unheard_publishes": published.unheard,
        "all_received": all_received,
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "span_s": span_s if delivered else math.nan,
        "relay_cpu_s": cpu_s,
        "relay_cpu_user_s": cpu_user_s,
        "relay_cpu_system_s": cpu_system_s,
        "cpu_us_per_delivery": cpu_s / delivered * 1e6 if delivered else math.nan,
        "deliveries_per_s": delivered / span_s if delivered and span_s > 0 else math.nan,
        "relay_metrics": metric_deltas(metrics_before, metrics_after),
        **peaks,
        **{k: v for k, v in analysis.items() if k != "latency_ms"},
        "latency_ms": latency,
    }


async def connect_clients(
    fleet: ClientFleet,
    relay: RelayProcess,
    groups: Sequence[tuple[str, int]],
    concurrency: int,
    life_s: float,
) -> dict[str, Any]:
    """Connect the fleet's clients and let the relay count them.

    Raises only when no client at all could connect. Anything less than asked for (a relay
    out of file descriptors, a refusal) comes back in the result, for the report to show:
    "connected" (clients that completed the upgrade), "relay_clients" (the relay's own
    count, from /healthz or, when that does not answer, its log) and "count_source".
    """
    await fleet.start(groups, life_s, concurrency, CONNECT_TIMEOUT_S)
    connected = int(fleet.ready["connected"])
    if connected == 0:
        raise BenchError(f"no client could connect: {fleet.ready.get('errors')}")
    relay_clients, source = await relay.settle_clients(connected, SETTLE_TIMEOUT_S)
    return {
        "connected": connected,
        "connect_failed": fleet.ready.get("failed", 0),
        "connect_errors": fleet.ready.get("errors", []),
        "connect_s": fleet.ready.get("connect_s"),
        "client_procs": fleet.ready.get("procs", 1),
        "relay_clients": relay_clients,
        "count_source": source,
    }


def fd_room(relay: RelayProcess) -> dict[str, int]:
    """The relay's open-file limit, the descriptors it holds before any client, and so the
    most clients it can accept (each client is one descriptor)."""
    limit = relay.nofile_limit()
    in_use = relay.fds()
    return {"relay_nofile": limit, "relay_fds_idle": in_use, "relay_fd_room": limit - in_use}


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
