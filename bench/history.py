"""`python -m bench.history`: days of one bot's history in Redis; time /analytics and /history.

Generates `--days` of one bot publishing once a second (with a few known outages) straight
into its history stream, as the relay writes it; builds the rollups with the relay's own
RollupStore (the first-start backfill); trims the stream to `--keep-raw-days`; then starts a
relay on that Redis and times its HTTP endpoints, checking the analytics against what the
generator knows. Prints Markdown; exits 0 unless the harness itself fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal
import sys
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
import redis.asyncio as aioredis

from pingpong_relay.parsing import positive_int
from pingpong_relay.redis_io.history import (
    BOTS_KEY,
    ESTABLISHED_KEY,
    FIRST_KEY,
    SEQ_KEY,
    stream_key,
)
from pingpong_relay.redis_io.rollup_store import (
    CURSOR_KEY,
    HOURS_PREFIX,
    MINUTES_PREFIX,
    RollupStore,
)
from pingpong_relay.rollups import (
    ANALYTICS_WINDOWS,
    GAP_FLOOR_MS,
    HOUR_MS,
    MINUTE_MS,
    hour_of,
    minute_of,
)
from pingpong_relay.subscriptions import bot_id

from .procs import Children, RedisServer, RelayProcess, report_main
from .stats import median, percentile

CHANNEL: Final = "bot:pingpong"
SOURCE: Final = "gate"
BOT: Final = bot_id(CHANNEL, SOURCE)
DAY_MS: Final = 24 * HOUR_MS
SILENCE_MS: Final = 30_000  # the relay's default --silence-timeout, which /analytics uses
BATCH: Final = 10_000  # commands per pipeline execute while loading
JITTER_MS: Final = 40  # each message leaves up to this long after its whole second
# (fraction of the span before its end, minute of the hour it starts at, minutes long):
# one across an hour boundary, one inside an hour, one in the last day's minutes.
OUTAGE_PLAN: Final = ((0.70, 53.0, 18.0), (0.17, 12.5, 29.0), (0.014, 31.25, 7.0))
# /analytics keeps minutes for the window's start edge only when the window is this short
# or shorter (rollup_store: start >= now - MINUTES_KEPT_MS + HOUR_MS); else whole hours.
MINUTE_EDGE_MAX_MS: Final = 47 * HOUR_MS
TIMED_WINDOWS: Final = ("30d", "7d", "24h")
SLOWLOG_US: Final = 10_000  # Redis commands at least this slow are listed


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def redis_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await asyncio.wait_for(redis.time(), 10.0)
    return int(seconds) * 1000 + int(micros) // 1000


def local_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the synthetic bot ----------------------------------------------------------------
class SyntheticBot:
    """One bot at one message a second (ping, pong, ping, …), silent during planned outages.

    It remembers every message's time and latency and every gap ≥ GAP_FLOOR_MS, which is
    all the analytics can be checked against. Until `publish_mode` is set it writes its
    stream directly (explicit ids `<ms>-0`, as the relay's script lays entries out); after,
    it PUBLISHes and lets the relay record.
    """

    def __init__(self, end_ms: int, days: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start_ms = end_ms - days * DAY_MS
        span = end_ms - self.start_ms
        self.outages: list[tuple[int, int]] = []
        for fraction, minute, minutes in OUTAGE_PLAN:
            begin = hour_of(end_ms - int(fraction * span)) + int(minute * MINUTE_MS)
            while begin + minutes * MINUTE_MS > end_ms - 10 * MINUTE_MS:
                begin -= HOUR_MS  # over before the load ends, whatever --days
            self.outages.append((begin, begin + int(minutes * MINUTE_MS)))
        self.tick = 0
        self.next_ms = self._schedule()
        self.seq = 0
        self.times = array("q")
        self.latencies = array("d")
        self.gaps: list[tuple[int, int]] = []  # (last message before, first after)
        self.last_ms: int | None = None
        self.publish_mode = False
        self.expected_total = days * 86_400 - sum((b - a) // 1000 for a, b in self.outages)

    def _schedule(self) -> int:
        while True:
            nominal = self.start_ms + self.tick * 1000
            self.tick += 1
            if not any(a <= nominal < b for a, b in self.outages):
                return nominal + self.rng.randrange(JITTER_MS)

    def _latency(self) -> float:
        if self.rng.random() < 0.003:
            return round(self.rng.uniform(250.0, 1200.0), 1)
        return round(self.rng.lognormvariate(math.log(42.0), 0.3), 1)

    def _message(self, at_ms: int, latency: float) -> bytes:
        kind = "ping" if self.seq % 2 == 0 else "pong"
        return orjson.dumps(
            {"type": kind, "latency": latency, "timestamp": at_ms - 2, "source": SOURCE}
        )

    def _note(self, at_ms: int, latency: float) -> None:
        if self.last_ms is not None and at_ms - self.last_ms >= GAP_FLOOR_MS:
            self.gaps.append((self.last_ms, at_ms))
        self.times.append(at_ms)
        self.latencies.append(latency)
        self.seq += 1
        self.last_ms = at_ms

    async def write_until(
        self, redis: aioredis.Redis, until_ms: int, started: float | None = None
    ) -> None:
        """Every message due by `until_ms`, straight into the stream, BATCH per pipeline."""
        key = stream_key(BOT)
        while self.next_ms <= until_ms:
            pipe = redis.pipeline(transaction=False)
            if self.seq == 0:
                pipe.hsetnx(FIRST_KEY, BOT, f"{self.next_ms}-0")
            for _ in range(BATCH):
                if self.next_ms > until_ms:
                    break
                at_ms, latency = self.next_ms, self._latency()
                raw = self._message(at_ms, latency)
                self._note(at_ms, latency)
                pipe.execute_command(
                    "XADD", key, f"{at_ms}-0",
                    "channel", CHANNEL, "relay_ms", at_ms - 1, "seq", self.seq, "raw", raw,
                )  # fmt: skip
                self.next_ms = self._schedule()
            # As the relay's script scores them: the bot's last append, and established.
            if self.last_ms is not None:
                pipe.zadd(BOTS_KEY, {BOT: self.last_ms})
                pipe.zadd(ESTABLISHED_KEY, {BOT: self.last_ms})
            pipe.set(SEQ_KEY, self.seq)
            await asyncio.wait_for(pipe.execute(), 120.0)
            if started is not None and self.seq % (20 * BATCH) < BATCH:
                rate = self.seq / max(1e-9, time.perf_counter() - started)
                _progress(
                    f"  loaded {self.seq:,} / ~{self.expected_total:,} entries ({rate:,.0f}/s)"
                )

    async def catch_up(self, redis: aioredis.Redis) -> None:
        started = time.perf_counter()
        while True:
            now = await redis_ms(redis)
            if self.next_ms > now:
                return
            await self.write_until(redis, now, started)

    async def live(self, redis: aioredis.Redis) -> None:
        """From the end of the load on: one message a second, written or published."""
        while True:
            await asyncio.sleep(max(0.0, (self.next_ms - local_ms()) / 1000))
            if not self.publish_mode:
                await self.write_until(redis, max(self.next_ms, await redis_ms(redis)))
                continue
            at_ms, latency = local_ms(), self._latency()
            raw = self._message(at_ms, latency)
            await asyncio.wait_for(redis.publish(CHANNEL, raw), 10.0)
            self._note(at_ms, latency)
            self.next_ms = self._schedule()

    async def settled(self) -> None:
        """Waits (≤ 3 s) for a moment ≥ 300 ms after a message and ≥ 300 ms before the next."""
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            now = local_ms()
            if (self.last_ms is None or now - self.last_ms >= 300) and self.next_ms - now >= 300:
                return
            await asyncio.sleep(0.05)

    def count(self, from_ms: int, to_ms: int) -> int:
        return bisect_right(self.times, to_ms) - bisect_left(self.times, from_ms)

    def latency_quantiles(self, from_ms: int, to_ms: int) -> tuple[float, float]:
        lo, hi = bisect_left(self.times, from_ms), bisect_right(self.times, to_ms)
        values = sorted(self.latencies[lo:hi])
        return percentile(values, 0.5), percentile(values, 0.99)


# --- Redis memory ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Memory:
    stage: str
    used_memory: int
    stream_entries: int
    stream_bytes: int
    minute_fields: int
    minute_bytes: int
    hour_fields: int
    hour_bytes: int


async def memory(redis: aioredis.Redis, stage: str) -> Memory:
    async def usage(key: str) -> int:
        value = await asyncio.wait_for(redis.memory_usage(key, samples=0), 60.0)
        return int(value or 0)

    info = await asyncio.wait_for(redis.info("memory"), 10.0)
    return Memory(
        stage=stage,
        used_memory=int(info["used_memory"]),
        stream_entries=int(await redis.xlen(stream_key(BOT))),
        stream_bytes=await usage(stream_key(BOT)),
        minute_fields=int(await redis.hlen(MINUTES_PREFIX + BOT)),
        minute_bytes=await usage(MINUTES_PREFIX + BOT),
        hour_fields=int(await redis.hlen(HOURS_PREFIX + BOT)),
        hour_bytes=await usage(HOURS_PREFIX + BOT),
    )


class LoopLag:
    """How late a 10 ms sleep wakes up: how long the event loop was blocked at a stretch."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags_ms.append((time.perf_counter() - before - 0.01) * 1000)


async def watch_heartbeats(url: str, delays_ms: list[float]) -> None:
    """A WebSocket client: publish → arrival of each live message, by the bot's timestamp."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            url, heartbeat=None, timeout=aiohttp.ClientWSTimeout(ws_close=2.0)
        ) as ws,
    ):
        async for frame in ws:
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            arrived = time.time_ns() / 1e6
            body = orjson.loads(frame.data)
            if body.get("type") == "bot:pingpong":
                # The bot's timestamp is 2 ms before it published (see _message).
                delays_ms.append(arrived - (float(body["data"]["timestamp"]) + 2))


# --- timing and checking ----------------------------------------------------------------
@dataclass(slots=True)
class Timing:
    label: str
    times_ms: list[float] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    size: int = 0
    body: Any = None


async def time_endpoint(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str],
    label: str,
    requests: int,
    warmups: int,
) -> Timing:
    timing = Timing(label)
    for attempt in range(warmups + requests):
        started = time.perf_counter()
        async with session.get(url, params=params) as response:
            body = await response.read()
            status = response.status
        elapsed = (time.perf_counter() - started) * 1000
        if attempt < warmups:
            continue
        timing.times_ms.append(elapsed)
        timing.statuses.add(status)
        timing.size = len(body)
        timing.body = orjson.loads(body) if body[:1] == b"{" else body[:200]
    return timing


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


def slow_commands(entries: Sequence[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    """SLOWLOG entries grouped by command name and key (ids in bounds reduced to "…")."""
    groups: dict[str, list[float]] = {}
    for entry in entries:
        command = entry["command"]
        words = (
            command.decode(errors="replace") if isinstance(command, bytes) else command
        ).split()
        name = " ".join(
            w if not w[:1].isdigit() else "<id>"
            for w in [w.upper() for w in words[:1]] + words[1:4]
        )
        groups.setdefault(name, []).append(float(entry["duration"]))
    return sorted(groups.items(), key=lambda item: -max(item[1]))


def _num(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, int | float) else str(value)


def _mb(value: int) -> str:
    return f"{value / 1e6:,.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- the run ----------------------------------------------------------------------------
async def run(args: argparse.Namespace, children: Children, run_dir: Path) -> str:
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    out: list[str] = []
    redis_server = RedisServer(children, run_dir)
    await redis_server.start()
    redis = aioredis.Redis(
        host="127.0.0.1", port=redis_server.port, socket_connect_timeout=5, socket_timeout=300
    )
    relay: RelayProcess | None = None
    tasks: list[asyncio.Task[None]] = []
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        bot = SyntheticBot(await redis_ms(redis), args.days, args.seed)
        _progress(f"bench.history: Redis {redis_server.url}; loading {args.days} d of {BOT}")
        started = time.perf_counter()
        await bot.catch_up(redis)
        load_s = time.perf_counter() - started
        loaded = bot.seq
        tasks.append(asyncio.create_task(bot.live(redis), name="bot"))
        memories = [await memory(redis, "after load")]

        _progress("bench.history: RollupStore.roll_up() over the whole stream (backfill)")
        lag = LoopLag()
        tasks.append(asyncio.create_task(lag.run(), name="loop-lag"))
        started = time.perf_counter()
        minutes = await asyncio.wait_for(RollupStore(redis).roll_up(), args.backfill_timeout)
        backfill_s = time.perf_counter() - started
        tasks[-1].cancel()
        memories.append(await memory(redis, "after rollups"))

        cutoff = await redis_ms(redis) - args.keep_raw_days * DAY_MS
        _progress(f"bench.history: XTRIM MINID to {args.keep_raw_days} d")
        started = time.perf_counter()
        trimmed = int(
            await asyncio.wait_for(
                redis.xtrim(stream_key(BOT), minid=cutoff, approximate=False), 300.0
            )
        )
        trim_s = time.perf_counter() - started
        memories.append(await memory(redis, f"after trim to {args.keep_raw_days} d"))

        _progress("bench.history: starting the relay")
        relay = RelayProcess(
            children, redis_server.url, run_dir / "relay.log",
            extra_args=("--history-retention", str(args.keep_raw_days * 86_400)),
        )  # fmt: skip
        await relay.start()
        bot.publish_mode = True
        delays: list[float] = []
        tasks.append(
            asyncio.create_task(
                watch_heartbeats(f"ws://127.0.0.1:{relay.port}/", delays), name="ws"
            )
        )
        await asyncio.sleep(1.5)  # the relay's first rollup pass, and a live message or two
        delays.clear()

        since = await redis_ms(redis) - 3 * DAY_MS
        url = relay.http_url
        endpoints: list[tuple[str, str, dict[str, str]]] = [
            (f"/analytics window={w}", "/analytics", {"bot": BOT, "window": w})
            for w in TIMED_WINDOWS
        ]
        endpoints += [
            ("/history limit=1000", "/history", {"bot": BOT, "limit": "1000"}),
            (
                "/history limit=1000 since=3 d ago",
                "/history",
                {"bot": BOT, "limit": "1000", "since": str(since)},
            ),
        ]
        _progress(f"bench.history: timing {len(endpoints)} endpoints × {args.requests}")
        await redis.config_set("slowlog-log-slower-than", SLOWLOG_US)
        await redis.config_set("slowlog-max-len", 1024)
        await redis.slowlog_reset()
        timed_from = time.perf_counter()
        timings = [
            await time_endpoint(session, url + path, params, label, args.requests, args.warmups)
            for label, path, params in endpoints
        ]
        timed_s = time.perf_counter() - timed_from
        live_delays = list(delays)
        slow = slow_commands(await redis.slowlog_get(1024))
        watcher = tasks[-1]
        watcher_error = (
            repr(watcher.exception()) if watcher.done() and not watcher.cancelled() else None
        )

        checks: list[list[str]] = []
        problems: list[str] = []
        for window in TIMED_WINDOWS:
            await bot.settled()
            async with session.get(
                url + "/analytics", params={"bot": BOT, "window": window}
            ) as response:
                body = orjson.loads(await response.read())
            if response.status != 200:
                problems.append(f"{window}: HTTP {response.status}: {body}")
                continue
            cells, found = check_analytics(window, body, expected_analytics(bot, window, body))
            checks.append(cells)
            problems += found
        for timing in timings:
            if timing.statuses != {200}:
                problems.append(f"{timing.label}: HTTP statuses {sorted(timing.statuses)}")
            elif timing.label.startswith("/history"):
                items = timing.body.get("items", [])
                if len(items) != 1000 or not timing.body.get("next_after"):
                    problems.append(
                        f"{timing.label}: {len(items)} items, next_after "
                        f"{timing.body.get('next_after')!r} (expected 1000 and a cursor)"
                    )
        relay_log = [line for line in relay.warnings() if line.strip()]

        cursor = await redis.hget(CURSOR_KEY, BOT)
        out.append(f"## History and analytics: {args.days} d of 1 msg/s from `{BOT}`\n")
        out.append(
            f"- load: {loaded:,} entries (XADD `<ms>-0`, {BATCH:,} per pipeline) in "
            f"{load_s:.1f} s ({loaded / load_s:,.0f}/s); outages generated: "
            + ", ".join(f"{(b - a) / 60_000:.1f} min" for a, b in bot.gaps)
        )
        lags = sorted(lag.lags_ms)
        out.append(
            f"- backfill (`RollupStore.roll_up()`, whole stream, in this process): "
            f"{minutes:,} minutes in {backfill_s:.1f} s ({loaded / backfill_s:,.0f} entries/s); "
            f"event loop blocked up to {lags[-1] if lags else math.nan:.0f} ms at a stretch "
            f"(p99 {percentile(lags, 0.99):.0f} ms) — what a relay doing this pass would stall"
        )
        out.append(
            f"- trim (`XTRIM MINID` to {args.keep_raw_days} d): {trimmed:,} entries in "
            f"{trim_s:.2f} s; rollup cursor at {int(cursor or 0)}"
        )
        out.append("")
        out.append(
            _table(
                (
                    "stage",
                    "used_memory MB",
                    "stream entries",
                    "stream MB",
                    "minute rollups",
                    "minutes MB",
                    "hour rollups",
                    "hours MB",
                ),
                [
                    (
                        m.stage,
                        _mb(m.used_memory),
                        f"{m.stream_entries:,}",
                        _mb(m.stream_bytes),
                        f"{m.minute_fields:,}",
                        _mb(m.minute_bytes),
                        f"{m.hour_fields:,}",
                        _mb(m.hour_bytes),
                    )
                    for m in memories
                ],
            )
        )
        last = memories[-1]
        if last.stream_entries:
            out.append(
                f"\nPer entry: stream {last.stream_bytes / last.stream_entries:.0f} B; "
                f"minute rollup {last.minute_bytes / max(1, last.minute_fields):.0f} B; "
                f"hour rollup {last.hour_bytes / max(1, last.hour_fields):.0f} B "
                "(MEMORY USAGE … SAMPLES 0)."
            )
        out.append(
            f"\n### Endpoints ({args.requests} sequential requests each after "
            f"{args.warmups} warm-ups, one keep-alive connection)\n"
        )
        out.append(
            _table(
                ("endpoint", "median ms", "p90 ms", "max ms", "response bytes"),
                [
                    (
                        t.label,
                        f"{median(t.times_ms):.1f}",
                        f"{percentile(sorted(t.times_ms), 0.9):.1f}",
                        f"{max(t.times_ms):.1f}",
                        f"{t.size:,}",
                    )
                    for t in timings
                ],
            )
        )
        if live_delays:
            out.append(
                f"\nLive heartbeats while timing ({timed_s:.1f} s): {len(live_delays)} "
                f"published → WebSocket delivered in median {median(live_delays):.1f} ms, "
                f"max {max(live_delays):.1f} ms."
            )
        if watcher_error is not None:
            out.append(f"\nThe WebSocket watcher stopped early: {watcher_error}")
        out.append("\n### Analytics against the generator\n")
        out.append(
            _table(
                (
                    "window",
                    "messages.count",
                    "expected (span rule)",
                    "exact in window",
                    "availability % relay / expected",
                    "outages relay / expected",
                    "latency p50 relay / exact",
                    "p99 relay / exact",
                    "check",
                ),
                checks,
            )
        )
        out.append(
            "\n`expected (span rule)` counts from the start of the minute (windows ≤ 47 h) or "
            "hour (longer) holding the window's start, as the relay's rollups do by design; "
            "`exact in window` is the count over [from_ms, to_ms]."
        )
        if problems:
            out.append("\n**Mismatches (relay bugs unless the generator is wrong):**\n")
            out += [f"- {p}" for p in problems]
        else:
            out.append("\nNo mismatches.")
        out.append(
            f"\nRedis commands slower than {SLOWLOG_US / 1000:g} ms during the timed requests "
            "(SLOWLOG; Redis serves nothing else meanwhile):\n"
        )
        if slow:
            out.append(
                _table(
                    ("command (key, first bounds)", "times", "median ms", "max ms"),
                    [
                        (
                            f"`{name}`",
                            str(len(us)),
                            f"{median(us) / 1000:.1f}",
                            f"{max(us) / 1000:.1f}",
                        )
                        for name, us in slow
                    ],
                )
            )
        else:
            out.append("none")
        if relay_log:
            out.append(f"\nRelay log ({len(relay_log)} lines at WARNING and above):\n")
            out += [f"    {line[:300]}" for line in relay_log[-10:]]
        return "\n".join(out)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5.0)
        if relay is not None:
            await relay.stop()
        await session.close()
        await redis.aclose()
        await redis_server.stop()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.history",
        description=(
            "Load days of one bot's history into a fresh Redis, build the rollups, trim, "
            "and time the relay's /analytics and /history."
        ),
    )
    parser.add_argument("--days", type=positive_int, default=30, help="days generated (30)")
    parser.add_argument(
        "--keep-raw-days",
        type=positive_int,
        default=7,
        help="days of raw stream kept after the rollups, and the relay's retention (7)",
    )
    parser.add_argument(
        "--requests", type=positive_int, default=20, help="timed requests per endpoint (20)"
    )
    parser.add_argument("--warmups", type=int, default=2, help="untimed requests first (2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the generator (1)")
    parser.add_argument(
        "--backfill-timeout",
        type=float,
        default=3600.0,
        help="seconds the rollup backfill may take before the run fails (3600)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return report_main("bench.history", build_parser().parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
