"""Rollups in Redis: built from the history streams, read for long-window analytics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, cast

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pingpong_relay.redis_io.history import (
    BOTS_KEY,
    ESTABLISHED_KEY,
    FIRST_KEY,
    KEY_PREFIX,
    stream_key,
)
from pingpong_relay.redis_io.subscriber import as_text
from pingpong_relay.rollups import (
    ANALYTICS_WINDOWS,
    HOUR_MS,
    MINUTE_MS,
    Rollup,
    analytics,
    build_rollup,
    hour_of,
    merge_rollups,
    minute_of,
)
from pingpong_relay.tasks import cancel_and_wait

__all__ = [
    "CURSOR_KEY",
    "HOURS_KEPT_MS",
    "HOURS_PREFIX",
    "MINUTES_PREFIX",
    "MINUTES_TTL_MS",
    "PRUNED_KEY",
    "RollupStore",
]

log = logging.getLogger("pingpong_relay.rollups")

MINUTES_PREFIX: Final = KEY_PREFIX + "rollup:m:"
HOURS_PREFIX: Final = KEY_PREFIX + "rollup:h:"
CURSOR_KEY: Final = KEY_PREFIX + "rollup:cursor"  # bot -> start of the last minute rolled up
PRUNED_KEY: Final = KEY_PREFIX + "rollup:pruned"  # bot -> last minute rollup deleted
# Recording runs a little behind receipt; a minute is rolled up once it is this far past.
SETTLE_MS: Final = 5_000
MINUTES_KEPT_MS: Final = 48 * HOUR_MS  # hours cover anything older
# Hours are read back for the longest analytics window; a bot's hours key expires that
# long after its last hour was written, and its minutes key once its minutes are all past
# MINUTES_KEPT_MS, so a bot that left takes its rollups with it.
HOURS_KEPT_MS: Final = max(ANALYTICS_WINDOWS.values()) + 2 * HOUR_MS
MINUTES_TTL_MS: Final = MINUTES_KEPT_MS + 2 * HOUR_MS
# How often the per-bot fields of CURSOR_KEY, PRUNED_KEY and FIRST_KEY are checked for
# bots that left the history longer than HOURS_KEPT_MS ago.
HOUSEKEEPING_MS: Final = HOUR_MS
READ_CHUNK: Final = 2_000


def _id_ms(entry_id: bytes | str) -> int:
    text = as_text(entry_id)
    return int(text.split("-", 1)[0])


def _message(fields: dict[bytes, bytes]) -> tuple[str | None, float | None]:
    body = orjson.loads(fields[b"raw"])
    latency = body.get("latency")
    return body.get("type"), float(latency) if isinstance(latency, int | float) else None


class RollupStore:
    """Keeps per-minute and per-hour rollups of every bot's stream, and answers analytics.

    Any number of relays may run this: each span is computed from the same recorded
    stream, so every relay writes the same bytes, and HSETNX keeps the first.
    """

    def __init__(self, redis: aioredis.Redis, *, interval_s: float = 10.0) -> None:
        self._redis = redis
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._housekept_ms = 0

    async def now_ms(self) -> int:
        """Redis's clock in ms since the epoch: the clock stream ids and rollups are made of."""
        seconds, micros = await self._redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    # --- building ---------------------------------------------------------------------
    def start(self) -> None:
        """Starts rolling up every `interval_s` seconds on the running loop."""
        self._task = asyncio.create_task(self._run(), name="rollups")

    async def stop(self) -> None:
        """Stops rolling up; what a pass cut short did not finish, the next pass (of any relay)
        redoes."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.roll_up()
            except (RedisError, OSError) as exc:
                log.warning("rollup pass failed (%s); next pass in %g s", exc, self._interval_s)
            except Exception:
                log.exception("rollup pass failed")
            await asyncio.sleep(self._interval_s)

    async def roll_up(self) -> int:
        """One pass: every complete minute not rolled up yet, and the hours they complete.

        Only established bots are rolled up (a bot on probation has a few entries at most,
        which /analytics reads from its stream), and only those appended to since their
        last rolled-up minute (or whose last hour is still to complete): a pass costs one
        round trip per thousand idle bots.
        """
        now_ms = await self.now_ms()
        written = 0
        rows = cast(
            list[tuple[bytes, float]],
            await self._redis.zrange(ESTABLISHED_KEY, 0, -1, withscores=True),
        )
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            cursors = await self._redis.hmget(CURSOR_KEY, [bot for bot, _ in chunk])
            for (raw_bot, last_ms), cursor in zip(chunk, cursors, strict=True):
                last_hour_done = hour_of(int(last_ms)) + HOUR_MS - MINUTE_MS
                if cursor is not None and int(cursor) >= last_hour_done:
                    # Nothing appended since, and the hour of the last append is complete.
                    continue
                bot = as_text(raw_bot)
                written += await self._roll_bot(bot, now_ms)
                await self._prune_minutes(bot, now_ms)
        if now_ms - self._housekept_ms >= HOUSEKEEPING_MS:
            await self.housekeeping(now_ms)
            self._housekept_ms = now_ms
        log.debug(
            "rollup pass done: %d minute(s) written",
            written,
            extra={"event": "rollup_pass", "minutes": written},
        )
        return written

    async def housekeeping(self, now_ms: int) -> int:
        """Drops the CURSOR_KEY, PRUNED_KEY and FIRST_KEY fields of bots that left the
        history (pruned from BOTS_KEY after the retention) and whose last rolled-up minute
        is older than HOURS_KEPT_MS, when their rollups have expired too. Returns how many."""
        names = {
            as_text(bot) for key in (CURSOR_KEY, FIRST_KEY) for bot in await self._redis.hkeys(key)
        }
        if not names:
            return 0
        ordered = sorted(names)
        pipe = self._redis.pipeline(transaction=False)
        for bot in ordered:
            pipe.zscore(BOTS_KEY, bot)
        pipe.hmget(CURSOR_KEY, ordered)
        *scores, cursors = await pipe.execute()
        gone = [
            bot
            for bot, score, cursor in zip(ordered, scores, cursors, strict=True)
            if score is None and (cursor is None or int(cursor) < now_ms - HOURS_KEPT_MS)
        ]
        for start in range(0, len(gone), 1000):
            chunk = gone[start : start + 1000]
            pipe = self._redis.pipeline(transaction=False)
            for key in (CURSOR_KEY, PRUNED_KEY, FIRST_KEY):
                pipe.hdel(key, *chunk)
            await pipe.execute()
        if gone:
            log.info(
                "forgot the rollup state of %d bot(s) gone from the history",
                len(gone),
                extra={"event": "rollup_housekeeping", "bots": len(gone)},
            )
        return len(gone)

    async def _roll_bot(self, bot: str, now_ms: int) -> int:
        last_complete = minute_of(now_ms - SETTLE_MS) - MINUTE_MS
        cursor_raw = await self._redis.hget(CURSOR_KEY, bot)
        if cursor_raw is not None:
            start = int(cursor_raw) + MINUTE_MS
        else:
            rows = cast(list[Any], await self._redis.xrange(stream_key(bot), "-", "+", count=1))
            if not rows:
                return 0
            start = minute_of(_id_ms(rows[0][0]))
        if start > last_complete:
            return 0
        # Chunk by chunk, so a long backlog (a first run over days of history) neither
        # holds it all in memory nor blocks the event loop for long.
        written = 0
        current: int | None = None
        messages: list[tuple[int, str | None, float | None]] = []
        position = f"{start}-0"
        end = f"{last_complete + MINUTE_MS - 1}-18446744073709551615"
        while True:
            rows = cast(
                list[Any],
                await self._redis.xrange(stream_key(bot), position, end, count=READ_CHUNK),
            )
            pipe = self._redis.pipeline(transaction=False)
            for entry_id, fields in rows:
                at_ms = _id_ms(entry_id)
                minute = minute_of(at_ms)
                if minute != current:
                    if current is not None:
                        self._write_minute(pipe, bot, build_rollup(current, MINUTE_MS, messages))
                        written += 1
                    current, messages = minute, []
                messages.append((at_ms, *_message(fields)))
            if len(rows) < READ_CHUNK:
                if current is not None:
                    self._write_minute(pipe, bot, build_rollup(current, MINUTE_MS, messages))
                    written += 1
                if written:
                    pipe.pexpire(MINUTES_PREFIX + bot, MINUTES_TTL_MS)
                await pipe.execute()
                break
            await pipe.execute()
            position = "(" + rows[-1][0].decode()
        # Hours that this pass completes: built from their minutes, then those minutes that
        # are old enough are dropped (the hour keeps everything they said).
        hours = sorted({hour_of(m) for m in range(start, last_complete + 1, MINUTE_MS)})
        complete = [h for h in hours if h + HOUR_MS - MINUTE_MS <= last_complete]
        for hour in complete:
            fields = [str(hour + i * MINUTE_MS) for i in range(60)]
            stored = await self._redis.hmget(MINUTES_PREFIX + bot, fields)
            parts = [Rollup.from_json(orjson.loads(raw)) for raw in stored if raw]
            merged = merge_rollups(hour, HOUR_MS, parts)
            if merged.count:
                pipe = self._redis.pipeline(transaction=False)
                pipe.hsetnx(HOURS_PREFIX + bot, str(hour), orjson.dumps(merged.to_json()))
                pipe.pexpire(HOURS_PREFIX + bot, HOURS_KEPT_MS)
                await pipe.execute()
        await self._redis.hset(CURSOR_KEY, bot, str(last_complete))
        log.debug(
            "rolled up %d minute(s) of %s up to %d",
            written,
            bot,
            last_complete,
            extra={"event": "rolled_up", "bot": bot, "minutes": written, "up_to_ms": last_complete},
        )
        return written

    async def _prune_minutes(self, bot: str, now_ms: int) -> None:
        """Drops minute rollups older than MINUTES_KEPT_MS; their hours say it all."""
        keep_from = hour_of(now_ms - MINUTES_KEPT_MS)
        pruned_raw = await self._redis.hget(PRUNED_KEY, bot)
        pruned_to = int(pruned_raw) if pruned_raw is not None else None
        if pruned_to is None:
            oldest = await self._redis.hkeys(MINUTES_PREFIX + bot)
            if not oldest:
                return
            pruned_to = min(int(m) for m in oldest) - MINUTE_MS
        if pruned_to + MINUTE_MS >= keep_from:
            return
        for chunk_start in range(pruned_to + MINUTE_MS, keep_from, 1000 * MINUTE_MS):
            chunk_end = min(chunk_start + 1000 * MINUTE_MS, keep_from)
            fields = [str(m) for m in range(chunk_start, chunk_end, MINUTE_MS)]
            await self._redis.hdel(MINUTES_PREFIX + bot, *fields)
        await self._redis.hset(PRUNED_KEY, bot, str(keep_from - MINUTE_MS))

    @staticmethod
    def _write_minute(pipe: Any, bot: str, rollup: Rollup) -> None:
        pipe.hsetnx(MINUTES_PREFIX + bot, str(rollup.start_ms), orjson.dumps(rollup.to_json()))

    # --- reading ----------------------------------------------------------------------
    async def analytics(self, bot: str, window: str, silence_ms: int) -> dict[str, Any]:
        """Availability, outages, latency and counts over `window` (a key of ANALYTICS_WINDOWS)."""
        now_ms = await self.now_ms()
        start = now_ms - ANALYTICS_WINDOWS[window]
        first_raw = await self._redis.hget(FIRST_KEY, bot)
        first_seen = _id_ms(first_raw) if first_raw else None
        cursor_raw = await self._redis.hget(CURSOR_KEY, bot)
        rolled_to = int(cursor_raw) + MINUTE_MS if cursor_raw is not None else minute_of(start)
        # Whole hours inside the window and already rolled up; minutes at both edges;
        # and the stream itself for what is newer than the last rollup.
        # Minutes older than MINUTES_KEPT_MS are gone; there the hour straddling the
        # window's start stands for it (at most an hour's messages early, in 7 or 30 days).
        minutes_at_start = start >= now_ms - MINUTES_KEPT_MS + HOUR_MS
        first_hour = hour_of(start) + HOUR_MS if minutes_at_start else hour_of(start)
        last_hour = hour_of(rolled_to) - HOUR_MS
        hour_fields = [str(h) for h in range(first_hour, last_hour + 1, HOUR_MS)]
        minute_fields = [
            str(m)
            for m in (
                *(
                    range(minute_of(start), min(first_hour, rolled_to), MINUTE_MS)
                    if minutes_at_start
                    else ()
                ),
                *range(max(last_hour + HOUR_MS, first_hour), rolled_to, MINUTE_MS),
            )
        ]
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(HOURS_PREFIX + bot, hour_fields or ["-"])
        pipe.hmget(MINUTES_PREFIX + bot, minute_fields or ["-"])
        pipe.xrange(stream_key(bot), f"{max(rolled_to, minute_of(start))}-0", "+")
        pipe.xrange(stream_key(bot), "-", "+", count=1)
        hours_raw, minutes_raw, recent, oldest = await pipe.execute()
        before: list[Any] = []
        bound = minute_of(start) - 1
        if oldest and _id_ms(oldest[0][0]) <= bound:
            # Only when the stream reaches back that far: XREVRANGE from a bound older
            # than the stream walks all of it (100 ms at 600,000 entries).
            before = cast(
                list[Any],
                await self._redis.xrevrange(
                    stream_key(bot), f"{bound}-18446744073709551615", "-", count=1
                ),
            )
        spans = [Rollup.from_json(orjson.loads(raw)) for raw in (*hours_raw, *minutes_raw) if raw]
        spans = [s for s in spans if s.start_ms + s.span_ms > start]
        if recent:
            recent_start = minute_of(_id_ms(recent[0][0]))
            spans.append(
                build_rollup(
                    recent_start,
                    now_ms - recent_start,
                    ((_id_ms(i), *_message(f)) for i, f in recent if _id_ms(i) >= start),
                )
            )
        last_before = _id_ms(before[0][0]) if before else None
        if last_before is None and first_seen is not None and first_seen < start:
            # Trimmed from the stream: the hour before the window tells, else it was
            # longer ago than any silence timeout.
            earlier = await self._redis.hget(HOURS_PREFIX + bot, str(hour_of(start) - HOUR_MS))
            last_before = (
                Rollup.from_json(orjson.loads(earlier)).last_ms if earlier else start - HOUR_MS
            )
        return analytics(bot, window, spans, now_ms, silence_ms, first_seen, last_before)
