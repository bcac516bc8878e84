"""The push benchmark's table and notes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..stats import median
from ..tables import Run, count, median_of, ms, num, table

HEADER = (
    "clients",
    "mode",
    "pushes/s offered",
    "pushes/s accepted",
    "non-200",
    "push p50 ms",
    "push p99 ms",
    "Redis p50 ms",
    "Redis p99 ms",
    "added p50 ms",
    "added p99 ms",
    "relay CPU µs/push",
    "lost",
)


def _added(pushes: Sequence[Run], baseline: Sequence[Run], key: str) -> float:
    """The median of each repeat's push figure less its own Redis baseline's (the same
    relay and clients, minutes apart): pairs cancel the drift between repeats."""
    return median(push[key] - redis[key] for push, redis in zip(pushes, baseline, strict=False))


def _row(
    args: dict[str, Any], mode: str, pushes: Sequence[Run], baseline: Sequence[Run]
) -> list[str]:
    label = (
        f"open loop, {args['rate']:g}/s"
        if mode == "open"
        else f"closed loop, {args['concurrency']} in flight"
    )
    with_baseline = mode == "open" and bool(baseline)
    return [
        count(args["clients"]),
        label,
        count(median_of(pushes, "offered_per_s")),
        count(median_of(pushes, "accepted_per_s")),
        count(median_of(pushes, "non_200")),
        ms(median_of(pushes, "p50_ms")),
        ms(median_of(pushes, "p99_ms")),
        ms(median_of(baseline, "p50_ms")) if with_baseline else "–",
        ms(median_of(baseline, "p99_ms")) if with_baseline else "–",
        ms(_added(pushes, baseline, "p50_ms")) if with_baseline else "–",
        ms(_added(pushes, baseline, "p99_ms")) if with_baseline else "–",
        num(median_of(pushes, "cpu_us_per_message")),
        count(median_of(pushes, "lost")),
    ]


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{code if code != '0' else 'none'}: {n:,}" for code, n in statuses.items())


def _share(seconds: float, wall_s: float) -> str:
    return "–" if wall_s <= 0 or math.isnan(wall_s) else f"{seconds / wall_s:.0%}"


def _run_notes(label: str, mode: str, run: Run) -> list[str]:
    """What a reader of the medians would otherwise miss in one run."""
    notes = [
        f"{label}: HTTP answer p50 {ms(run['answer_p50_ms'])} ms, p99 {ms(run['answer_p99_ms'])} "
        f"ms; answers by status {_statuses(run['statuses'])}; relay CPU "
        f"{_share(run['relay_cpu_s'], run['client_wall_s'])} of its core, load generator "
        f"{_share(run['load_cpu_s'], run['elapsed_s'])} and clients "
        f"{_share(run['client_cpu_s'], run['client_wall_s'])} of theirs"
    ]
    cpu_us = run["cpu_us_per_message"]
    if mode == "closed" and cpu_us > 0:
        notes.append(
            f"{label}: at {num(cpu_us)} µs of relay CPU per push, a core of its own would "
            f"take about {count(1e6 / cpu_us)} pushes/s (the relay CPU share above says how "
            "far it was from that)"
        )
    if mode == "open" and run.get("late"):
        notes.append(
            f"{label}: {run['late']} push(es) waited for one of the slots in flight "
            "(sent late; each delay is timed from its actual send)"
        )
    odd = {key: run[key] for key in ("duplicates", "malformed", "stale", "disconnected")}
    if any(odd.values()) or not run["all_received"] or run["lost"]:
        notes.append(
            f"{label}: lost {run['lost']:,} of {run['expected']:,} deliveries; "
            + ", ".join(f"{key} {value}" for key, value in odd.items())
            + f"; relay slow-client closes {run['relay_metrics']['slow_client_closes']:.0f}, "
            f"conflated {run['relay_metrics']['conflated']:.0f}"
        )
    return notes


def render(args: dict[str, Any], results: dict[str, Any]) -> str:
    """The table, then the notes."""
    runs: dict[str, list[Run]] = results["runs"]
    repeat = args["repeat"]
    out = [
        f"## Push URLs: {args['clients']:,} clients watching, {args['bots']} bots, "
        f"{args['duration']:g} s per round, "
        + (f"median of {repeat} runs" if repeat > 1 else "1 run"),
        "",
        f"{results['pinned']}; {results['elapsed_s']:.0f} s in all.",
        "",
    ]
    rows = [
        _row(args, mode, runs[mode], runs["redis"]) for mode in ("open", "closed") if runs[mode]
    ]
    out += table(HEADER, rows, text_first=2)
    notes = []
    for baseline_run in runs["redis"]:
        notes.append(
            f"Redis baseline: {baseline_run['published']} PUBLISHes at {args['rate']:g}/s, "
            f"relay CPU {num(baseline_run['cpu_us_per_message'])} µs per message, "
            f"lost {baseline_run['lost']}"
        )
    for mode in ("open", "closed"):
        for index, run in enumerate(runs[mode], 1):
            label = f"{mode} loop" + (f" run {index}" if repeat > 1 else "")
            notes += _run_notes(label, mode, run)
    out += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(out)
