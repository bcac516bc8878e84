"""Pure statistics for the benchmark: percentiles, per-round delivery analysis, medians."""

from __future__ import annotations

import dataclasses
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

ENVELOPE_TYPE = "bot:pingpong"
# What a conflating relay sends a backed-up client once it drains (--slow-client conflate).
CONFLATED_TYPE = "relay:conflated"
# How a pushed message says which round and seq it is, and when it was sent (push_tag).
PUSH_TAG = "bench"
# RoundAnalysis fields that add up across client processes.
_SUMMED = (
    "clients",
    "expected",
    "frames",
    "delivered",
    "lost",
    "duplicates",
    "out_of_order",
    "unexpected",
    "malformed",
    "stale",
    "overflow",
    "disconnected",
    "clients_with_loss",
    "conflated_notices",
    "conflated_skipped",
)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted sequence; NaN when it is empty."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(fraction * len(sorted_values))
    return float(sorted_values[min(len(sorted_values), max(1, rank)) - 1])


def median(values: Iterable[float]) -> float:
    """Median of the finite values; NaN when there are none."""
    finite = sorted(v for v in values if not math.isnan(v))
    if not finite:
        return math.nan
    middle = len(finite) // 2
    if len(finite) % 2:
        return finite[middle]
    return (finite[middle - 1] + finite[middle]) / 2


def push_tag(round_id: int, seq: int, sent_ns: int) -> str:
    """The `msg` of a benchmark push (bench.push): a push URL carries no fields of its own,
    and the relay puts `msg` in the envelope's `data`."""
    return f"{PUSH_TAG}:{round_id}:{seq}:{sent_ns}"


def message_tags(data: dict[str, Any]) -> tuple[int, int, int]:
    """(seq, round, sent_ns) of a benchmark message: its own fields when published to Redis,
    or its `msg` tag when pushed (`push_tag`); KeyError/ValueError/TypeError for neither."""
    if "seq" in data:
        return int(data["seq"]), int(data["round"]), int(data["sent_ns"])
    parts = str(data["msg"]).split(":")
    if len(parts) != 4 or parts[0] != PUSH_TAG:
        raise ValueError("not a benchmark push")
    return int(parts[2]), int(parts[1]), int(parts[3])


@dataclass(slots=True)
class ClientLog:
    """What one client recorded in a round: arrival times and raw payloads, `count` of them."""

    times_ns: list[int]
    payloads: list[bytes]
    count: int
    overflow: int = 0
    disconnected: bool = False
    group: int = 0  # index into the round's `wanted` masks: which filter the client used


@dataclass(slots=True)
class RoundAnalysis:
    """One round's deliveries over a set of clients: counts, latency summaries, groups."""

    round_id: int
    clients: int
    expected_per_client: int
    expected: int = 0
    frames: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    malformed: int = 0
    stale: int = 0
    overflow: int = 0
    disconnected: int = 0
    clients_with_loss: int = 0
    conflated_notices: int = 0  # relay:conflated frames (not deliveries)
    conflated_skipped: int = 0  # the sum of their "skipped" counts
    latency_ms: dict[str, float] = field(default_factory=dict)
    first_message_ms: dict[str, float] = field(default_factory=dict)
    per_seq_max_ms: list[float] = field(default_factory=list)
    last_received_ns: int = 0
    groups: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return dataclasses.asdict(self)


def _latency_summary(latencies_ns: list[int]) -> dict[str, float]:
    latencies_ns.sort()
    if not latencies_ns:
        return {"count": 0, "p50": math.nan, "p99": math.nan, "p999": math.nan, "max": math.nan}
    return {
        "count": len(latencies_ns),
        "min": latencies_ns[0] / 1e6,
        "p50": percentile(latencies_ns, 0.50) / 1e6,
        "p90": percentile(latencies_ns, 0.90) / 1e6,
        "p99": percentile(latencies_ns, 0.99) / 1e6,
        "p999": percentile(latencies_ns, 0.999) / 1e6,
        "max": latencies_ns[-1] / 1e6,
        "mean": sum(latencies_ns) / len(latencies_ns) / 1e6,
    }


class _RoundScan:
    """The state `analyse_round` builds up, one client log at a time."""

    def __init__(self, result: RoundAnalysis, masks: Sequence[bytes], expected_count: int) -> None:
        self.result = result
        self.masks = masks
        self.expected_count = expected_count
        self.per_group = [mask.count(1) for mask in masks]
        self.first_wanted = [mask.find(1) for mask in masks]
        self.group_latencies: list[list[int]] = [[] for _ in masks]
        self.group_counts = [{"clients": 0, "expected": 0, "delivered": 0} for _ in masks]
        self.per_seq_max_ns = [0] * expected_count
        self.first_message_ns: list[int] = []
        self.last_received_ns = 0

    def client(self, log: ClientLog) -> None:
        """One client's frames: what it should have had, and what it got."""
        result, expected_count = self.result, self.expected_count
        mask = self.masks[log.group]
        expected_here = self.per_group[log.group]
        first_seq = self.first_wanted[log.group]
        latencies_ns = self.group_latencies[log.group]
        per_seq_max_ns = self.per_seq_max_ns
        round_id = result.round_id
        loads = orjson.loads
        seen = bytearray(expected_count)
        previous = -1
        unique = 0
        result.expected += expected_here
        result.frames += log.count
        result.overflow += log.overflow
        result.disconnected += log.disconnected
        for index in range(log.count):
            received_ns = log.times_ns[index]
            try:
                envelope = loads(log.payloads[index])
                if envelope["type"] == CONFLATED_TYPE:
                    result.conflated_notices += 1
                    result.conflated_skipped += int(envelope.get("skipped", 0))
                    continue
                data = envelope["data"]
                if envelope["type"] != ENVELOPE_TYPE or envelope["source"] != "bot":
                    raise ValueError("not a bot:pingpong envelope")
                seq, frame_round, sent_ns = message_tags(data)
            except (ValueError, KeyError, TypeError):
                result.malformed += 1
                continue
            if frame_round != round_id:
                result.stale += 1
                continue
            if not 0 <= seq < expected_count:
                result.malformed += 1
                continue
            if not mask[seq]:
                result.unexpected += 1
                continue
            if seen[seq]:
                result.duplicates += 1
                continue
            seen[seq] = 1
            unique += 1
            if seq < previous:
                result.out_of_order += 1
            previous = max(previous, seq)
            latency_ns = received_ns - sent_ns
            latencies_ns.append(latency_ns)
            if latency_ns > per_seq_max_ns[seq]:
                per_seq_max_ns[seq] = latency_ns
            if seq == first_seq:
                self.first_message_ns.append(latency_ns)
            self.last_received_ns = max(self.last_received_ns, received_ns)
        self._count(log.group, expected_here, unique)

    def _count(self, group: int, expected_here: int, unique: int) -> None:
        self.result.delivered += unique
        if unique < expected_here:
            self.result.clients_with_loss += 1
        counts = self.group_counts[group]
        counts["clients"] += 1
        counts["expected"] += expected_here
        counts["delivered"] += unique

    def finish(self, filtered: bool, raw: dict[str, Any] | None) -> RoundAnalysis:
        """The summaries, once every client is in."""
        result = self.result
        result.lost = result.expected - result.delivered
        if raw is not None:
            raw["groups"] = [array("q", latencies) for latencies in self.group_latencies]
            raw["first"] = array("q", self.first_message_ns)
        result.latency_ms = _latency_summary([ns for g in self.group_latencies for ns in g])
        result.first_message_ms = _latency_summary(self.first_message_ns)
        result.per_seq_max_ms = [round(ns / 1e6, 3) for ns in self.per_seq_max_ns]
        result.last_received_ns = self.last_received_ns
        if filtered:
            result.groups = [
                {
                    **counts,
                    "lost": counts["expected"] - counts["delivered"],
                    "latency_ms": _latency_summary(latencies),
                }
                for counts, latencies in zip(self.group_counts, self.group_latencies, strict=True)
            ]
        return result


def analyse_round(
    logs: Sequence[ClientLog],
    round_id: int,
    expected_count: int,
    wanted: Sequence[bytes] | None = None,
    raw: dict[str, Any] | None = None,
) -> RoundAnalysis:
    """Parse what every client recorded and check delivery: loss, order, duplicates, latency.

    Sequence numbers of a round run 0..expected_count-1. Without `wanted` each client must
    see each once, in order. With it, a client of group g must see exactly the seqs where
    `wanted[g][seq]` is 1 (its filter's subset), once each and in order; any other seq of
    the round counts as unexpected. Frames from another round (a backlog from an earlier
    step) count as stale. A relay:conflated notice is counted (with what it says it
    skipped) and is neither a delivery nor malformed.

    With `raw` (a dict to fill), the latencies behind the summaries are put there as
    int64 arrays, "groups" (one per group) and "first", so that the analyses of several
    client processes can be merged exactly (`merge_rounds`).
    """
    masks = list(wanted) if wanted is not None else [b"\x01" * expected_count]
    if any(len(mask) != expected_count for mask in masks):
        raise ValueError(f"every wanted mask must have {expected_count} entries")
    per_group = [mask.count(1) for mask in masks]
    scan = _RoundScan(
        RoundAnalysis(round_id, len(logs), max(per_group, default=0)), masks, expected_count
    )
    for log in logs:
        scan.client(log)
    return scan.finish(wanted is not None, raw)


def merge_rounds(parts: Sequence[dict[str, Any]], raws: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One analysis (as `RoundAnalysis.to_json`) out of several client processes' analyses
    of the same round, with percentiles recomputed from their raw latencies."""
    if len(parts) == 1:
        return dict(parts[0])
    merged: dict[str, Any] = {key: sum(int(part[key]) for part in parts) for key in _SUMMED}
    merged["round_id"] = parts[0]["round_id"]
    merged["expected_per_client"] = max(int(part["expected_per_client"]) for part in parts)
    merged["last_received_ns"] = max(int(part["last_received_ns"]) for part in parts)
    merged["per_seq_max_ms"] = [
        max(values) for values in zip(*(p["per_seq_max_ms"] for p in parts), strict=True)
    ]
    groups = len(raws[0]["groups"])
    merged["latency_ms"] = _latency_summary([ns for r in raws for g in r["groups"] for ns in g])
    merged["first_message_ms"] = _latency_summary([ns for r in raws for ns in r["first"]])
    merged["groups"] = []
    if parts[0]["groups"]:
        for index in range(groups):
            counts = {
                key: sum(int(part["groups"][index][key]) for part in parts)
                for key in ("clients", "expected", "delivered", "lost")
            }
            latencies = [ns for r in raws for ns in r["groups"][index]]
            merged["groups"].append({**counts, "latency_ms": _latency_summary(latencies)})
    return merged
