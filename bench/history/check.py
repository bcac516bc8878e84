"""The analytics the relay answers, checked against what the generator knows."""

from __future__ import annotations

from typing import Any, Final

from pingpong_relay.rollups import ANALYTICS_WINDOWS, HOUR_MS, hour_of, minute_of

from .synthetic import SyntheticBot

SILENCE_MS: Final = 30_000  # the relay's default --silence-timeout, which /analytics uses
# /analytics keeps minutes for the window's start edge only when the window is this short
# or shorter (rollup_store: start >= now - MINUTES_KEPT_MS + HOUR_MS); else whole hours.
MINUTE_EDGE_MAX_MS: Final = 47 * HOUR_MS


def expected_analytics(bot: SyntheticBot, window: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the generator says the relay should answer, over the response's own [from, to]."""
    from_ms, to_ms = int(body["from_ms"]), int(body["to_ms"])
    observed_from = max(from_ms, bot.times[0])
    found: list[tuple[int, int]] = []
    for since, until in bot.gaps:
        start = max(since + SILENCE_MS, observed_from)
        if start < until <= to_ms:
            found.append((start, until))
    silent = sum(b - a for a, b in found)
    edge = (
        minute_of(from_ms) if ANALYTICS_WINDOWS[window] <= MINUTE_EDGE_MAX_MS else hour_of(from_ms)
    )
    p50, p99 = bot.latency_quantiles(from_ms, to_ms)
    return {
        "count_exact": bot.count(from_ms, to_ms),
        "count_rule": bot.count(edge, to_ms),
        "availability_pct": round(100.0 * (1 - silent / (to_ms - observed_from)), 4),
        "outages": found,
        "observed_from_ms": observed_from,
        "p50": p50,
        "p99": p99,
    }


def check_analytics(
    window: str, body: dict[str, Any], expected: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(the table row's cells, mismatches)."""
    problems: list[str] = []
    messages = body.get("messages", {})
    count = messages.get("count")
    if count != expected["count_rule"]:
        problems.append(
            f"{window}: messages.count {count} ≠ {expected['count_rule']} expected "
            f"(exact count in the window {expected['count_exact']})"
        )
    if messages.get("ping", 0) + messages.get("pong", 0) != count:
        problems.append(
            f"{window}: ping {messages.get('ping')} + pong {messages.get('pong')} ≠ count"
        )
    availability = body.get("availability_pct")
    if availability is None or abs(availability - expected["availability_pct"]) > 0.00015:
        problems.append(
            f"{window}: availability {availability} % ≠ {expected['availability_pct']} % expected"
        )
    if body.get("observed_from_ms") != expected["observed_from_ms"]:
        problems.append(
            f"{window}: observed_from_ms {body.get('observed_from_ms')} ≠ "
            f"{expected['observed_from_ms']} expected"
        )
    relay_outages = [(o["start_ms"], o["end_ms"]) for o in body.get("outages", [])]
    if relay_outages != expected["outages"]:
        problems.append(
            f"{window}: outages {relay_outages} ≠ {expected['outages']} expected "
            "((start, end) ms: silence_ms after the last message, to the next)"
        )
    latency = body.get("latency_ms", {})
    cells = [
        window,
        f"{count:,}" if isinstance(count, int) else str(count),
        f"{expected['count_rule']:,}",
        f"{expected['count_exact']:,}",
        f"{availability} / {expected['availability_pct']}",
        f"{body.get('outage_count')} / {len(expected['outages'])}",
        f"{_num(latency.get('p50'))} / {expected['p50']:.1f}",
        f"{_num(latency.get('p99'))} / {expected['p99']:.1f}",
        "ok" if not problems else "**MISMATCH**",
    ]
    return cells, problems


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else str(value)
