"""Message history in Redis Streams: recorded exactly once across relays, read back by range."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from pingpong_relay.redis_io.appender import Appender
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.redis_io.history_keys import (
    BOTS_KEY,
    DEAF_KEY,
    ESTABLISHED_KEY,
    FIRST_KEY,
    KEY_PREFIX,
    SEEN_TTL_MS,
    SEQ_KEY,
    STREAM_PREFIX,
    stream_key,
)
from pingpong_relay.redis_io.subscriber import as_text
from pingpong_relay.replay import Entry
from pingpong_relay.tasks import cancel_and_wait
from pingpong_relay.telemetry.metrics import RelayMetrics

__all__ = [
    "BOTS_KEY",
    "ESTABLISHED_KEY",
    "FIRST_KEY",
    "KEY_PREFIX",
    "MAX_PAGE",
    "PRUNE_INTERVAL_S",
    "SEEN_TTL_MS",
    "SEQ_KEY",
    "STREAM_PREFIX",
    "History",
    "stream_key",
]

log = logging.getLogger("pingpong_relay.history")

# What XRANGE returns with decode_responses off (redis-py's own annotation is looser).
_Rows = list[tuple[bytes, dict[bytes, bytes]]]

MAX_PAGE: Final = 10_000
# The index is pruned every PRUNE_INTERVAL_S, PRUNE_BATCH bots per script run (about a
# millisecond of Redis's time each), as many runs as it takes.
PRUNE_INTERVAL_S: Final = 10.0
PRUNE_BATCH: Final = 1000

# Bots not appended to for the retention (their streams have expired) leave BOTS_KEY and
# ESTABLISHED_KEY, and their FIRST_KEY entry unless they were established (rollups, which
# outlive the stream, still use it; rollup_store's housekeeping drops it later). At most
# ARGV[2] bots per run; returns how many went.
_PRUNE_SCRIPT: Final = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local cutoff = now_ms - tonumber(ARGV[1])
if cutoff <= 0 then return 0 end
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. string.format('%d', cutoff),
                        'LIMIT', 0, tonumber(ARGV[2]))
if #gone == 0 then return 0 end
for _, bot in ipairs(gone) do
  if not redis.call('ZSCORE', KEYS[3], bot) then redis.call('HDEL', KEYS[2], bot) end
end
redis.call('ZREM', KEYS[1], unpack(gone))
redis.call('ZREM', KEYS[3], unpack(gone))
return #gone
"""


def _entry(bot: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    return Entry(
        id=as_text(entry_id),
        bot=bot,
        channel=fields[b"channel"].decode(),
        relay_ms=int(fields[b"relay_ms"]),
        seq=int(fields.get(b"seq", b"0")),
        raw=fields[b"raw"],
    )


class History:
    """Appends accepted messages to a stream per bot, and reads them back.

    Appends go through a bounded queue and one worker on a connection of their own, so
    the broadcast never waits for Redis; a failed append is retried with backoff until
    Redis takes it (the queue holds `queue_size` messages meanwhile; past that the oldest
    waiting message is dropped and counted, never silently).
    """

    def __init__(
        self,
        url: str,
        metrics: RelayMetrics,
        *,
        retention_s: float,
        max_entries: int,
        queue_size: int = 100_000,
        prune_interval_s: float = PRUNE_INTERVAL_S,
    ) -> None:
        # A Redis restart leaves dead connections in the pool; retrying a command on a
        # fresh one is what makes the first read or write after it succeed.
        self._redis: aioredis.Redis = redis_client(
            url,
            socket_connect_timeout=5,
            socket_timeout=10,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
        )
        self._metrics = metrics
        self.retention_s = retention_s
        # At least 1 ms: PEXPIRE 0 would delete the stream just appended to.
        self.retention_ms = max(1, int(retention_s * 1000))
        self.max_entries = max_entries
        self._appender = Appender(
            url,
            self._redis,
            metrics,
            retention_ms=self.retention_ms,
            max_entries=max_entries,
            queue_size=queue_size,
        )
        self.record = self._appender.record
        self._prune_script = self._redis.register_script(_PRUNE_SCRIPT)
        self._prune_interval_s = prune_interval_s
        self._task: asyncio.Task[None] | None = None
        self._prune_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def redis(self) -> aioredis.Redis:
        """The history's Redis client (the rollup store and the seeding read through it)."""
        return self._redis

    # --- writing ----------------------------------------------------------------------
    def start(self) -> None:
        """Starts the recording and pruning tasks on the running loop."""
        self._appender.start()
        self._prune_task = asyncio.create_task(self._keep_pruning(), name="history-prune")

    async def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Gives queued messages up to `drain_timeout_s` seconds to be recorded, stops the
        tasks and closes the connection."""
        await cancel_and_wait(self._prune_task)
        self._prune_task = None
        await self._appender.stop(drain_timeout_s)
        if self._background:
            await asyncio.wait(self._background, timeout=drain_timeout_s)
        await self._redis.aclose()

    async def prune(self) -> int:
        """Drops the bots not appended to for the retention from the index (and their
        FIRST_KEY entry unless they were established); how many went."""
        pruned = 0
        while True:
            gone = int(
                await self._prune_script(
                    keys=[BOTS_KEY, FIRST_KEY, ESTABLISHED_KEY],
                    args=[self.retention_ms, PRUNE_BATCH],
                )
            )
            pruned += gone
            if gone < PRUNE_BATCH:
                return pruned
            await asyncio.sleep(0)  # other commands between batches

    async def _keep_pruning(self) -> None:
        while True:
            await asyncio.sleep(self._prune_interval_s)
            try:
                pruned = await self.prune()
            except (RedisError, OSError) as exc:
                log.warning(
                    "pruning the bots index failed (%s); next try in %g s",
                    exc,
                    self._prune_interval_s,
                )
                continue
            if pruned:
                log.info(
                    "%d bot(s) not heard for --history-retention left the history index",
                    pruned,
                    extra={"event": "history_pruned", "bots": pruned},
                )

    def record_deaf(self, from_ms: int, to_ms: int, relay: str) -> None:
        """Notes that this relay heard nothing from `from_ms` to `to_ms` (once Redis is back)."""

        async def write() -> None:
            try:
                await self._redis.xadd(
                    DEAF_KEY,
                    {"from_ms": from_ms, "to_ms": to_ms, "relay": relay},
                    maxlen=10_000,
                    approximate=True,
                )
            except (RedisError, OSError) as exc:
                log.warning("could not record the deaf period: %s", exc)
            else:
                log.debug(
                    "recorded deaf period %d-%d", from_ms, to_ms, extra={"event": "deaf_recorded"}
                )

        task = asyncio.create_task(write(), name="history-deaf")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def deaf_periods(self, since_ms: int) -> list[tuple[int, int, str]]:
        """(from, to, relay) of every recorded deafness that ended at or after `since_ms`."""
        rows = cast(list[Any], await self._redis.xrange(DEAF_KEY, "-", "+"))
        periods = []
        for _, fields in rows:
            to_ms = int(fields[b"to_ms"])
            if to_ms >= since_ms:
                periods.append((int(fields[b"from_ms"]), to_ms, fields[b"relay"].decode()))
        return periods

    # --- reading ----------------------------------------------------------------------
    async def bots(self) -> list[str]:
        """Every bot with a stream (appended to within the retention), by name."""
        members = await self._redis.zrange(BOTS_KEY, 0, -1)
        return sorted(as_text(m) for m in members)

    async def recent_established(
        self, limit: int, horizon_s: float | None = None
    ) -> list[tuple[str, float]]:
        """(bot, time of its last append in s) of the `limit` established bots appended to
        most recently, newest first, leaving out those older than `horizon_s` (and than the
        retention): one round trip, whatever the number of bots in the history."""
        if limit <= 0:
            return []
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        pipe.zrevrange(ESTABLISHED_KEY, 0, limit - 1, withscores=True)
        (seconds, micros), rows = await pipe.execute()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        horizon_ms = self.retention_ms
        if horizon_s is not None and horizon_s > 0:
            horizon_ms = min(horizon_ms, int(horizon_s * 1000))
        floor_ms = now_ms - horizon_ms
        return [(as_text(bot), float(score) / 1000.0) for bot, score in rows if score >= floor_ms]

    async def knows(self, bot: str) -> bool:
        """Whether the history holds anything of `bot`: its stream, or the first entry ever
        recorded (kept while its rollups can still be read)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.exists(stream_key(bot))
        pipe.hexists(FIRST_KEY, bot)
        stream, first = await pipe.execute()
        return bool(stream) or bool(first)

    async def read(self, bot: str, start: str, end: str, limit: int) -> list[Entry]:
        """Entries of one bot with start ≤ id ≤ end (exclusive start with "(id"), oldest first."""
        rows = await self._redis.xrange(stream_key(bot), start, end, count=limit)
        return [_entry(bot, entry_id, fields) for entry_id, fields in cast(_Rows, rows or [])]

    async def read_all(
        self, start: str, end: str, limit: int, visible: Callable[[str], bool] | None = None
    ) -> list[Entry]:
        """Entries of every bot (or every bot `visible` accepts) in recording order: a
        merge of each bot's first `limit`. Streams of bots not visible are never read, so
        a scoped page is filled with the bots it may see."""
        merged: list[Entry] = []
        for bot in await self.bots():
            if visible is not None and not visible(bot):
                continue
            merged.extend(await self.read(bot, start, end, limit))
        merged.sort(key=lambda e: e.seq)
        return merged[:limit]

    async def read_last(self, bot: str, count: int) -> list[Entry]:
        """The last `count` entries of one bot, oldest first."""
        rows = await self._redis.xrevrange(stream_key(bot), "+", "-", count=count)
        entries = [_entry(bot, i, f) for i, f in cast(_Rows, rows or [])]
        entries.reverse()
        return entries

    async def retained_from(self, bot: str) -> tuple[str | None, str | None]:
        """(id of the first entry ever recorded, id of the oldest entry still kept)."""
        first_ever = cast(bytes | None, await self._redis.hget(FIRST_KEY, bot))
        rows = cast(_Rows, await self._redis.xrange(stream_key(bot), "-", "+", count=1) or [])
        oldest = rows[0][0].decode() if rows else None
        return (first_ever.decode() if first_ever else None), oldest
