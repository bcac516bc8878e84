"""Per-minute and per-hour rollups of a bot's history, and availability analytics (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pingpong_relay.histogram import LogHistogram

__all__ = [
    "ANALYTICS_WINDOWS",
    "GAP_FLOOR_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "Outage",
    "Rollup",
    "analytics",
    "build_rollup",
    "hour_of",
    "merge_rollups",
    "minute_of",
    "outages",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
# Gaps between messages shorter than this are never an outage under any sensible silence
# timeout, so rollups do not keep them; longer ones are kept with where they lie.
GAP_FLOOR_MS: Final = 5_000
ANALYTICS_WINDOWS: Final = {
    "1h": HOUR_MS,
    "24h": 24 * HOUR_MS,
    "7d": 168 * HOUR_MS,
    "30d": 720 * HOUR_MS,
}


@dataclass(slots=True)
class Rollup:
    """What a span of one bot's messages (a minute or an hour) adds up to.

    Everything here merges exactly: counts add, the latency histogram merges, gaps
    inside each span are kept as they are, and gaps between spans are recovered from
    their first and last message times.
    """

    start_ms: int
    span_ms: int
    count: int = 0
    ping: int = 0
    pong: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    heartbeat_seconds: int = 0  # seconds of the span with at least one message
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (from, to), ≥ GAP_FLOOR_MS
    latency: LogHistogram = field(default_factory=LogHistogram)

    def to_json(self) -> dict[str, Any]:
        """The compact, exact form the rollup store keeps; `from_json` reads it back."""
        return {
            "start": self.start_ms,
            "span": self.span_ms,
            "count": self.count,
            "ping": self.ping,
            "pong": self.pong,
            "first": self.first_ms,
            "last": self.last_ms,
            "hb": self.heartbeat_seconds,
            "gaps": self.gaps,
            "lat": self.latency.to_json(),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Rollup:
        """The rollup `to_json` stored; KeyError or ValueError when `body` is not one."""
        return cls(
            start_ms=int(body["start"]),
            span_ms=int(body["span"]),
            count=int(body["count"]),
            ping=int(body["ping"]),
            pong=int(body["pong"]),
            first_ms=body["first"],
            last_ms=body["last"],
            heartbeat_seconds=int(body["hb"]),
            gaps=[(int(a), int(b)) for a, b in body["gaps"]],
            latency=LogHistogram.from_json(body["lat"]),
        )


def minute_of(ms: int) -> int:
    """The start of the minute (UTC) that `ms`, milliseconds since the epoch, lies in."""
    return ms - ms % MINUTE_MS


def hour_of(ms: int) -> int:
    """The start of the hour (UTC) that `ms`, milliseconds since the epoch, lies in."""
    return ms - ms % HOUR_MS


def build_rollup(
    start_ms: int, span_ms: int, messages: Iterable[tuple[int, str | None, float | None]]
) -> Rollup:
    """A rollup from (time ms, type, latency ms) of one span, in time order."""
    rollup = Rollup(start_ms, span_ms)
    seconds: set[int] = set()
    previous: int | None = None
    for at_ms, kind, latency_ms in messages:
        rollup.count += 1
        if kind == "ping":
            rollup.ping += 1
        elif kind == "pong":
            rollup.pong += 1
        if latency_ms is not None:
            rollup.latency.add(latency_ms)
        seconds.add(at_ms // 1000)
        if previous is None:
            rollup.first_ms = at_ms
        elif at_ms - previous >= GAP_FLOOR_MS:
            rollup.gaps.append((previous, at_ms))
        previous = at_ms
    rollup.last_ms = previous
    rollup.heartbeat_seconds = len(seconds)
    return rollup


def merge_rollups(start_ms: int, span_ms: int, parts: Sequence[Rollup]) -> Rollup:
    """One rollup from consecutive smaller ones (minutes into an hour), in time order."""
    merged = Rollup(start_ms, span_ms)
    previous_last: int | None = None
    for part in sorted(parts, key=lambda r: r.start_ms):
        if part.count == 0:
            continue
        assert part.first_ms is not None
        merged.count += part.count
        merged.ping += part.ping
        merged.pong += part.pong
        merged.heartbeat_seconds += part.heartbeat_seconds
        merged.latency.merge(part.latency)
        if previous_last is None:
            merged.first_ms = part.first_ms
        elif part.first_ms - previous_last >= GAP_FLOOR_MS:
            merged.gaps.append((previous_last, part.first_ms))
        merged.gaps.extend(part.gaps)
        previous_last = part.last_ms
    merged.last_ms = previous_last
    return merged


@dataclass(frozen=True, slots=True)
class Outage:
    """A period a bot was silent, in ms since the epoch (a silence timeout after its last
    message until its next one)."""

    start_ms: int
    end_ms: int | None  # None: still silent now

    def to_json(self, now_ms: int) -> dict[str, Any]:
        """The outage as /analytics reports it; an ongoing one lasts until `now_ms`."""
        end = self.end_ms if self.end_ms is not None else now_ms
        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "duration_s": round((end - self.start_ms) / 1000, 3),
            "ongoing": self.end_ms is None,
        }


def outages(
    spans: Sequence[Rollup],
    window_start_ms: int,
    now_ms: int,
    silence_ms: int,
    last_before_ms: int | None = None,
) -> list[Outage]:
    """Silent periods within [window_start_ms, now_ms].

    A bot becomes silent `silence_ms` after its last message and is silent until its next
    one; so a gap g between messages holds an outage of g − silence_ms, starting
    silence_ms after the earlier message. Before the bot's first message ever there is no
    bot to be silent; a silence that began before the window counts from the window's start.
    """
    found: list[Outage] = []
    previous: int | None = last_before_ms

    def gap(since: int, until: int | None) -> None:
        start = max(since + silence_ms, window_start_ms)
        if (until if until is not None else now_ms) > start:
            found.append(Outage(start, until))

    for span in sorted(spans, key=lambda r: r.start_ms):
        if span.count == 0:
            continue
        assert span.first_ms is not None
        if previous is not None:
            gap(previous, span.first_ms)
        for since, until in span.gaps:
            gap(since, until)
        previous = span.last_ms
    if previous is not None:
        gap(previous, None)
    return found


def analytics(
    bot: str,
    window: str,
    spans: Sequence[Rollup],
    now_ms: int,
    silence_ms: int,
    first_seen_ms: int | None,
    last_before_ms: int | None = None,
) -> dict[str, Any]:
    """Availability, outages, latency percentiles and counts over a window.

    `spans` are the rollups covering the window (hours, and minutes at its edges);
    `last_before_ms` is the bot's last message before the window, if any, so that a
    silence that began earlier is seen.
    """
    window_ms = ANALYTICS_WINDOWS[window]
    start_ms = now_ms - window_ms
    # The bot's lifetime bounds what availability can be measured over.
    observed_from = max(start_ms, first_seen_ms) if first_seen_ms is not None else now_ms
    observed_ms = max(0, now_ms - observed_from)
    found = outages(spans, observed_from, now_ms, silence_ms, last_before_ms)
    silent_ms = sum(
        (o.end_ms if o.end_ms is not None else now_ms) - max(o.start_ms, observed_from)
        for o in found
    )
    inside = [s for s in spans if s.start_ms + s.span_ms > start_ms and s.start_ms <= now_ms]
    latency = LogHistogram()
    count = ping = pong = 0
    for span in inside:
        latency.merge(span.latency)
        count += span.count
        ping += span.ping
        pong += span.pong
    return {
        "bot": bot,
        "window": window,
        "from_ms": start_ms,
        "to_ms": now_ms,
        "observed_from_ms": observed_from if first_seen_ms is not None else None,
        "availability_pct": (
            round(100.0 * (1 - silent_ms / observed_ms), 4) if observed_ms else None
        ),
        "silence_timeout_s": silence_ms / 1000,
        "outage_count": len(found),
        "outages": [o.to_json(now_ms) for o in found],
        "messages": {"count": count, "ping": ping, "pong": pong},
        "latency_ms": latency.describe(rounded=False),
    }
