"""One measured round of `bench.run`: clients armed, messages published, deliveries analysed."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import redis.asyncio as aioredis

from harness.processes import HarnessError
from harness.relay import RelayProcess
from harness.tree import ProcessTree, RssSampler

from .clientcount import settle_clients
from .fleet import ClientFleet
from .publishing import CHANNEL, ClientFilter, Published, publish, publish_burst

CONNECT_TIMEOUT_S: Final = 120.0
ANALYSIS_TIMEOUT_S: Final = 120.0
# How long the relay may take to count the clients that connected.
SETTLE_TIMEOUT_S: Final = 30.0


class MeasuredServer(Protocol):
    """What a round measures: a relay (RelayProcess), or the bare relay of the floor part,
    whose `metrics` is None (it has no /metrics)."""

    @property
    def tree(self) -> ProcessTree: ...

    async def metrics(self) -> dict[str, float] | None: ...


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


class PeakWatch:
    """The relay's peak RSS over a round, measured twice: VmHWM reset at the start and read
    at the end, and RSS sampled every 10 ms in between."""

    def __init__(self, relay: MeasuredServer) -> None:
        self.relay = relay
        self.reset = relay.tree.reset_peak_rss()
        self.rss_start = relay.tree.rss_bytes()
        self.sampler = RssSampler([process.pid for process in relay.tree.processes()])
        self.sampler.start()

    def finish(self) -> dict[str, Any]:
        """Stops sampling; the round's figures, in KB."""
        sampled = self.sampler.stop()
        hwm = self.relay.tree.peak_rss_bytes() if self.reset else 0
        return {
            "rss_start_kb": self.rss_start / 1024,
            "rss_end_kb": self.relay.tree.rss_bytes() / 1024,
            "peak_rss_sampled_kb": sampled / 1024,
            "rss_samples": self.sampler.samples,
            "peak_rss_hwm_kb": hwm / 1024 if self.reset else math.nan,
            "peak_rss_kb": max(sampled, hwm) / 1024,
        }


@dataclass(frozen=True, slots=True)
class RoundPlan:
    """What one round publishes: at `rate` for `duration_s`, or `burst` messages at once;
    then the clients wait up to `drain_s` for the last one."""

    round_id: int
    rate: float
    duration_s: float
    drain_s: float
    channels: Sequence[str] = (CHANNEL,)
    filters: Sequence[ClientFilter] | None = None
    burst: int = 0
    watch_peak: bool = False

    @property
    def planned(self) -> int:
        return self.burst or max(1, round(self.rate * self.duration_s))


async def _publish(bot: aioredis.Redis, plan: RoundPlan) -> Published:
    if plan.burst:
        return await publish_burst(bot, plan.round_id, plan.burst, plan.channels[0])
    time_limit_s = plan.duration_s * 1.5 + 2.0
    return await publish(bot, plan.round_id, plan.rate, plan.planned, time_limit_s, plan.channels)


def _collect_command(plan: RoundPlan, published: Published) -> dict[str, Any]:
    """The clients' "collect": how many to wait for, and with filters which each group wants."""
    collect: dict[str, Any] = {
        "cmd": "collect",
        "round": plan.round_id,
        "count": published.count,
        "timeout_s": plan.drain_s,
    }
    if plan.filters is not None:
        collect["wanted"] = [
            [int(f.wants(channel, kind)) for channel, kind in published.messages]
            for f in plan.filters
        ]
    return collect


async def run_round(
    relay: MeasuredServer,
    fleet: ClientFleet,
    bot: aioredis.Redis,
    run_dir: Path,
    plan: RoundPlan,
) -> dict[str, Any]:
    """One publishing phase against connected clients; latency, loss and relay CPU of it.

    With filters (one per client group, in the fleet's group order) each group is
    checked against the subset of what was published that its filter lets through.
    With a burst that many messages go out in one pipeline instead of at the rate.
    With `watch_peak` the relay's peak RSS over the round is measured (PeakWatch).
    """
    # A conflating relay may add a notice frame now and then: room for a few.
    await fleet.arm(plan.round_id, plan.planned + 16)
    metrics_before = await relay.metrics()
    peak = PeakWatch(relay) if plan.watch_peak else None
    cpu_before = relay.tree.cpu_times()
    published = await _publish(bot, plan)
    out = run_dir / f"round-{os.getpid()}-{time.monotonic_ns()}.json"
    # Relay CPU is read as soon as the clients hold everything (or gave up waiting), so the
    # client's parsing that follows does not stretch the window.
    collect = _collect_command(plan, published)
    all_received = await fleet.collect(collect, out, plan.drain_s + 30.0)
    cpu_after = relay.tree.cpu_times()
    peaks = peak.finish() if peak is not None else {}
    analysis = await fleet.analysis(out, ANALYSIS_TIMEOUT_S)
    metrics_after = await relay.metrics()
    cpu_user_s = cpu_after[0] - cpu_before[0]
    cpu_system_s = cpu_after[1] - cpu_before[1]
    return {
        **_round_figures(plan, published, analysis, cpu_user_s, cpu_system_s),
        "all_received": all_received,
        "relay_metrics": metric_deltas(metrics_before, metrics_after),
        **peaks,
        **{k: v for k, v in analysis.items() if k != "latency_ms"},
        "latency_ms": analysis["latency_ms"],
    }


def _round_figures(
    plan: RoundPlan,
    published: Published,
    analysis: dict[str, Any],
    cpu_user_s: float,
    cpu_system_s: float,
) -> dict[str, Any]:
    """The round's own columns: what was published, latency, CPU, delivery rate."""
    delivered = int(analysis["delivered"])
    span_s = (analysis["last_received_ns"] - published.first_sent_ns) / 1e9
    latency = analysis["latency_ms"]
    cpu_s = cpu_user_s + cpu_system_s
    return {
        "round": plan.round_id,
        "rate": published.rate if plan.burst else plan.rate,
        "duration_s": published.elapsed_s if plan.burst else plan.duration_s,
        "drain_s": plan.drain_s,
        "burst": plan.burst,
        "published": published.count,
        "planned": plan.planned,
        "publish_rate": published.rate,
        "publish_s": published.elapsed_s,
        "unheard_publishes": published.unheard,
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "max_ms": latency["max"],
        "span_s": span_s if delivered else math.nan,
        "relay_cpu_s": cpu_s,
        "relay_cpu_user_s": cpu_user_s,
        "relay_cpu_system_s": cpu_system_s,
        "cpu_us_per_delivery": cpu_s / delivered * 1e6 if delivered else math.nan,
        "deliveries_per_s": delivered / span_s if delivered and span_s > 0 else math.nan,
    }


async def connect_clients(
    fleet: ClientFleet,
    relay: RelayProcess | None,
    groups: Sequence[tuple[str, int]],
    concurrency: int,
    life_s: float,
) -> dict[str, Any]:
    """Connect the fleet's clients and let the relay count them.

    Raises only when no client at all could connect. Anything less than asked for (a relay
    out of file descriptors, a refusal) comes back in the result, for the report to show:
    "connected" (clients that completed the upgrade), "relay_clients" (the relay's own
    count, from /healthz or, when that does not answer, its log) and "count_source".
    Without a relay (a server that cannot count, as the bare relay) the fleet's own count
    stands: a client is connected once its upgrade was answered.
    """
    await fleet.start(groups, life_s, concurrency, CONNECT_TIMEOUT_S)
    connected = int(fleet.ready["connected"])
    if connected == 0:
        raise HarnessError(f"no client could connect: {fleet.ready.get('errors')}")
    relay_clients: int | None
    if relay is None:
        relay_clients, source = connected, "clients"
    else:
        relay_clients, source = await settle_clients(relay, connected, SETTLE_TIMEOUT_S)
    return {
        "connected": connected,
        "connect_failed": fleet.ready.get("failed", 0),
        "connect_errors": fleet.ready.get("errors", []),
        "connect_s": fleet.ready.get("connect_s"),
        "client_procs": fleet.ready.get("procs", 1),
        "relay_clients": relay_clients,
        "count_source": source,
    }
