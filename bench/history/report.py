"""The history benchmark's report: load, backfill and trim; memory; endpoints; checks."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from typing import Any

from ..stats import median, percentile
from ..tables import table
from .measure import Memory, Timing
from .synthetic import BATCH, BOT

MEMORY_HEADER = (
    "stage",
    "used_memory MB",
    "stream entries",
    "stream MB",
    "minute rollups",
    "minutes MB",
    "hour rollups",
    "hours MB",
)
CHECK_HEADER = (
    "window",
    "messages.count",
    "expected (span rule)",
    "exact in window",
    "availability % relay / expected",
    "outages relay / expected",
    "latency p50 relay / exact",
    "p99 relay / exact",
    "check",
)


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f}"


def _steps(args: argparse.Namespace, f: dict[str, Any]) -> list[str]:
    """Load, backfill and trim, one line each."""
    loaded, lags = f["loaded"], f["lags_ms"]
    return [
        f"- load: {loaded:,} entries (XADD `<ms>-0`, {BATCH:,} per pipeline) in "
        f"{f['load_s']:.1f} s ({loaded / f['load_s']:,.0f}/s); outages generated: "
        + ", ".join(f"{(b - a) / 60_000:.1f} min" for a, b in f["gaps"]),
        f"- backfill (`RollupStore.roll_up()`, whole stream, in this process): "
        f"{f['minutes']:,} minutes in {f['backfill_s']:.1f} s "
        f"({loaded / f['backfill_s']:,.0f} entries/s); "
        f"event loop blocked up to {lags[-1] if lags else math.nan:.0f} ms at a stretch "
        f"(p99 {percentile(lags, 0.99):.0f} ms) — what a relay doing this pass would stall",
        f"- trim (`XTRIM MINID` to {args.keep_raw_days} d): {f['trimmed']:,} entries in "
        f"{f['trim_s']:.2f} s; rollup cursor at {f['cursor']}",
    ]


def _memory(memories: Sequence[Memory]) -> list[str]:
    """Redis memory after each stage, and per entry at the end."""
    rows = [
        [
            m.stage,
            _mb(m.used_memory),
            f"{m.stream_entries:,}",
            _mb(m.stream_bytes),
            f"{m.minute_fields:,}",
            _mb(m.minute_bytes),
            f"{m.hour_fields:,}",
            _mb(m.hour_bytes),
        ]
        for m in memories
    ]
    out = ["", *table(MEMORY_HEADER, rows, text_first=1)]
    last = memories[-1]
    if last.stream_entries:
        out.append(
            f"\nPer entry: stream {last.stream_bytes / last.stream_entries:.0f} B; "
            f"minute rollup {last.minute_bytes / max(1, last.minute_fields):.0f} B; "
            f"hour rollup {last.hour_bytes / max(1, last.hour_fields):.0f} B "
            "(MEMORY USAGE … SAMPLES 0)."
        )
    return out


def _endpoints(args: argparse.Namespace, f: dict[str, Any]) -> list[str]:
    """The timed requests, and the live heartbeats meanwhile."""
    timings: list[Timing] = f["timings"]
    rows = [
        [
            t.label,
            f"{median(t.times_ms):.1f}",
            f"{percentile(sorted(t.times_ms), 0.9):.1f}",
            f"{max(t.times_ms):.1f}",
            f"{t.size:,}",
        ]
        for t in timings
    ]
    out = [
        f"\n### Endpoints ({args.requests} sequential requests each after "
        f"{args.warmups} warm-ups, one keep-alive connection)\n",
        *table(("endpoint", "median ms", "p90 ms", "max ms", "response bytes"), rows, text_first=1),
    ]
    live = f["live_delays"]
    if live:
        out.append(
            f"\nLive heartbeats while timing ({f['timed_s']:.1f} s): {len(live)} "
            f"published → WebSocket delivered in median {median(live):.1f} ms, "
            f"max {max(live):.1f} ms."
        )
    if f["watcher_error"] is not None:
        out.append(f"\nThe WebSocket watcher stopped early: {f['watcher_error']}")
    return out


def _checks(f: dict[str, Any]) -> list[str]:
    """The analytics against the generator, and any mismatch."""
    out = [
        "\n### Analytics against the generator\n",
        *table(CHECK_HEADER, f["checks"], text_columns=1, text_first=1),
        "\n`expected (span rule)` counts from the start of the minute (windows ≤ 47 h) or "
        "hour (longer) holding the window's start, as the relay's rollups do by design; "
        "`exact in window` is the count over [from_ms, to_ms].",
    ]
    if f["problems"]:
        out.append("\n**Mismatches (relay bugs unless the generator is wrong):**\n")
        out += [f"- {p}" for p in f["problems"]]
    else:
        out.append("\nNo mismatches.")
    return out


def _slowlog(f: dict[str, Any], slowlog_us: int) -> list[str]:
    """Redis commands slower than the SLOWLOG threshold, and the relay's warnings."""
    out = [
        f"\nRedis commands slower than {slowlog_us / 1000:g} ms during the timed requests "
        "(SLOWLOG; Redis serves nothing else meanwhile):\n"
    ]
    slow: list[tuple[str, list[float]]] = f["slow"]
    if slow:
        rows = [
            [f"`{name}`", str(len(us)), f"{median(us) / 1000:.1f}", f"{max(us) / 1000:.1f}"]
            for name, us in slow
        ]
        header = ("command (key, first bounds)", "times", "median ms", "max ms")
        out += table(header, rows, text_first=1)
    else:
        out.append("none")
    relay_log: list[str] = f["relay_log"]
    if relay_log:
        out.append(f"\nRelay log ({len(relay_log)} lines at WARNING and above):\n")
        out += [f"    {line[:300]}" for line in relay_log[-10:]]
    return out


def render(args: argparse.Namespace, figures: dict[str, Any], slowlog_us: int) -> str:
    """The whole report."""
    out = [
        f"## History and analytics: {args.days} d of 1 msg/s from `{BOT}`\n",
        *_steps(args, figures),
        *_memory(figures["memories"]),
        *_endpoints(args, figures),
        *_checks(figures),
        *_slowlog(figures, slowlog_us),
    ]
    return "\n".join(out)
