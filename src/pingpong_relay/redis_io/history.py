"""Message history in Redis Streams: recorded exactly once across relays, read back by range."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any, Final, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from pingpong_relay.backoff import Backoff
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.redis_io.resp import RespConnection, lean_url
from pingpong_relay.redis_io.subscriber import as_text
from pingpong_relay.replay import Entry
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S
from pingpong_relay.tasks import cancel_and_wait, drain_then_cancel
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

# One hash tag for every key the relay keeps: all of them land in one Redis Cluster slot,
# so the multi-key Lua scripts (exactly-once appends) work on a cluster as on one server.
KEY_PREFIX: Final = "{pingpong}:"
STREAM_PREFIX: Final = KEY_PREFIX + "history:"
SEEN_PREFIX: Final = KEY_PREFIX + "seen:"
# Every bot with a stream, scored by the time of its last append (Redis's clock, ms); a
# member not appended to for the retention is pruned with its FIRST_KEY entry (its stream
# has expired by then). It replaces the `{pingpong}:bots` set of earlier versions, which is
# not migrated (there was no release); delete that key by hand if it is there.
BOTS_KEY: Final = KEY_PREFIX + "bots:last"
# The established bots among them (stats.ESTABLISHED_MESSAGES entries over at least
# stats.ESTABLISHED_SPAN_S), scored the same way: what a restarted relay seeds from, and what
# rollups are built for.
ESTABLISHED_KEY: Final = KEY_PREFIX + "bots:established"
SEQ_KEY: Final = KEY_PREFIX + "seq"
FIRST_KEY: Final = KEY_PREFIX + "first"  # bot -> id of the first entry ever recorded
DEAF_KEY: Final = KEY_PREFIX + "deaf"  # when some relay could not hear Redis
# Every relay receives every Pub/Sub message within moments of the others; a minute of
# memory is ample to recognise the copies, and costs one small key per message.
SEEN_TTL_MS: Final = 60_000
MAX_PAGE: Final = 10_000
# The index is pruned every PRUNE_INTERVAL_S, PRUNE_BATCH bots per script run (about a
# millisecond of Redis's time each), as many runs as it takes.
PRUNE_INTERVAL_S: Final = 10.0
PRUNE_BATCH: Final = 1000

# Atomic in Redis: the first relay to run it for a message appends it and remembers the
# entry id under the message's fingerprint; every later relay gets that same id back.
# Redis runs scripts one at a time, so two relays can never both append. Trimming is
# exact (at one message per append it removes at most a few entries each time) and uses
# Redis's own clock, the one stream ids are made of. A global sequence number orders
# entries across bots, whose ids can tie within a millisecond.
# Each append also sets the stream to expire after the retention (so the stream of a bot
# that sent one message goes when that message would have been trimmed), scores the bot in
# BOTS_KEY, and in ESTABLISHED_KEY once its stream has enough entries over enough time.
_RECORD_SCRIPT: Final = """
local id = redis.call('GET', KEYS[1])
if id then return {0, id} end
local seq = redis.call('INCR', KEYS[4])
id = redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], '*', 'channel', ARGV[4],
                'relay_ms', ARGV[5], 'seq', seq, 'raw', ARGV[6])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local retention = tonumber(ARGV[3])
local cutoff = now_ms - retention
if cutoff > 0 then redis.call('XTRIM', KEYS[2], 'MINID', cutoff) end
redis.call('PEXPIRE', KEYS[2], retention)
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
redis.call('ZADD', KEYS[3], now_ms, ARGV[7])
redis.call('HSETNX', KEYS[5], ARGV[7], id)
if redis.call('ZSCORE', KEYS[6], ARGV[7]) then
  redis.call('ZADD', KEYS[6], now_ms, ARGV[7])
elseif redis.call('XLEN', KEYS[2]) >= tonumber(ARGV[8]) then
  local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  local first_ms = tonumber(string.match(first[1][1], '^%d+'))
  if now_ms - first_ms >= tonumber(ARGV[9]) then
    redis.call('ZADD', KEYS[6], now_ms, ARGV[7])
  end
end
return {1, id}
"""

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


def stream_key(bot: str) -> str:
    """The key of the Redis Stream that holds one bot's recorded messages."""
    return STREAM_PREFIX + bot


def fingerprint(channel: str, raw: bytes) -> str:
    """What identifies one published message across relays: its channel and exact bytes.

    Two identical payloads on one channel within SEEN_TTL_MS count as one; a bot's
    message carries its own millisecond timestamp, so real repeats do not collide.
    """
    digest = hashlib.blake2b(raw, digest_size=16, person=b"pingpong-relay")
    digest.update(b"\0" + channel.encode())
    return SEEN_PREFIX + digest.hexdigest()


def _entry(bot: str, entry_id: bytes | str, fields: dict[bytes, bytes]) -> Entry:
    return Entry(
        id=as_text(entry_id),
        bot=bot,
        channel=fields[b"channel"].decode(),
        relay_ms=int(fields[b"relay_ms"]),
        seq=int(fields.get(b"seq", b"0")),
        raw=fields[b"raw"],
    )


Recorded = Callable[[str], None]
# One queued append: bot, channel, raw message, relay ms, what to call with its id.
_Append = tuple[str, str, bytes, int, Recorded | None]
# At most this many queued appends go to Redis in one write.
APPEND_BATCH: Final = 256
# How long Redis has to answer an append (as redis-py's socket timeout below).
_REPLY_TIMEOUT_S: Final = 10.0
# What XRANGE returns with decode_responses off (redis-py's own annotation is looser).
_Rows = list[tuple[bytes, dict[bytes, bytes]]]


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
        self._queue: asyncio.Queue[_Append] = asyncio.Queue(maxsize=queue_size)
        # Appends go over a lean connection of their own where the URL allows one.
        self._url = url
        self._lean = lean_url(url)
        self._appender: RespConnection | None = None
        self._script = self._redis.register_script(_RECORD_SCRIPT)
        self._prune_script = self._redis.register_script(_PRUNE_SCRIPT)
        self._prune_interval_s = prune_interval_s
        self._task: asyncio.Task[None] | None = None
        self._prune_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)

    @property
    def redis(self) -> aioredis.Redis:
        """The history's Redis client (the rollup store and the seeding read through it)."""
        return self._redis

    # --- writing ----------------------------------------------------------------------
    def record(
        self, bot: str, channel: str, raw: bytes, relay_ms: int, on_recorded: Recorded | None
    ) -> None:
        """Queues a message for appending, without waiting; `on_recorded` then gets its
        entry id (the first relay's, if another relay recorded it first)."""
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()
            self._metrics.history_dropped.inc()
            log.warning("history queue full: the oldest unrecorded message was dropped")
        self._queue.put_nowait((bot, channel, raw, relay_ms, on_recorded))

    def start(self) -> None:
        """Starts the recording and pruning tasks on the running loop."""
        self._task = asyncio.create_task(self._run(), name="history-recorder")
        self._prune_task = asyncio.create_task(self._keep_pruning(), name="history-prune")

    async def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Gives queued messages up to `drain_timeout_s` seconds to be recorded, stops the
        tasks and closes the connection."""
        await cancel_and_wait(self._prune_task)
        self._prune_task = None
        await drain_then_cancel(self._queue, self._task, drain_timeout_s)
        self._task = None
        if self._background:
            await asyncio.wait(self._background, timeout=drain_timeout_s)
        if self._appender is not None:
            self._appender.close()
            self._appender = None
        await self._redis.aclose()

    async def _run(self) -> None:
        queue = self._queue
        while True:
            # What queued meanwhile goes in one write (a burst); one message, at once.
            batch = [await queue.get()]
            while len(batch) < APPEND_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                if self._lean:
                    await self._append_lean(batch)
                else:
                    for item in batch:
                        await self._append(item)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _append_lean(self, batch: list[_Append]) -> None:
        """Appends `batch` over the lean connection (redis_io.resp), retrying all of it
        until Redis answers each (the script makes a repeat of an append return its id)."""
        attempt = 0
        while True:
            try:
                connection = await self._lean_connection()
                sha = self._script.sha
                futures = [
                    connection.call("EVALSHA", sha, 6, *self._script_call(item)) for item in batch
                ]
                async with asyncio.timeout(_REPLY_TIMEOUT_S):
                    replies = [await future for future in futures]
                break
            except (RedisError, OSError, TimeoutError) as exc:
                # NOSCRIPT (a flushed script cache) too: a new connection loads it again.
                if self._appender is not None:
                    self._appender.close()
                    self._appender = None
                await self._retry_pause(attempt, exc)
                attempt += 1
        for item, (created, entry_id) in zip(batch, replies, strict=True):
            self._appended(item, created, entry_id)

    async def _lean_connection(self) -> RespConnection:
        connection = self._appender
        if connection is None or connection.closed:
            connection = await RespConnection.open(self._url, _REPLY_TIMEOUT_S)
            try:
                await connection.call("SCRIPT", "LOAD", _RECORD_SCRIPT)
            except BaseException:
                connection.close()
                raise
            self._appender = connection
        return connection

    async def _append(self, item: _Append) -> None:
        """Appends one message with redis-py (a cluster or Sentinel URL), retrying until
        Redis takes it."""
        attempt = 0
        while True:
            try:
                keys_and_args = self._script_call(item)
                created, entry_id = await self._script(
                    keys=keys_and_args[:6], args=keys_and_args[6:]
                )
                break
            except (RedisError, OSError) as exc:
                await self._retry_pause(attempt, exc)
                attempt += 1
        self._appended(item, created, entry_id)

    def _script_call(self, item: _Append) -> list[Any]:
        """The record script's six keys, then its nine arguments, for one queued append."""
        bot, channel, raw, relay_ms, _ = item
        return [
            fingerprint(channel, raw),
            stream_key(bot),
            BOTS_KEY,
            SEQ_KEY,
            FIRST_KEY,
            ESTABLISHED_KEY,
            SEEN_TTL_MS,
            self.max_entries,
            self.retention_ms,
            channel,
            relay_ms,
            raw,
            bot,
            ESTABLISHED_MESSAGES,
            int(ESTABLISHED_SPAN_S * 1000),
        ]

    async def _retry_pause(self, attempt: int, exc: BaseException) -> None:
        if attempt == 0:
            log.warning(
                "history append failed (%s); retrying",
                exc,
                extra={"event": "history_retry", "error": str(exc)},
            )
        await asyncio.sleep(self._backoff.delay(attempt))

    def _appended(self, item: _Append, created: int, raw_id: bytes | str) -> None:
        """Counts an append and hands its entry id on."""
        bot, on_recorded = item[0], item[4]
        entry_id = as_text(raw_id)
        if created:
            self._metrics.history_recorded.inc()
        else:
            self._metrics.history_duplicates.inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s as %s",
                "recorded" if created else "already recorded by another relay:",
                bot,
                entry_id,
                extra={
                    "event": "history_recorded" if created else "history_duplicate",
                    "bot": bot,
                    "id": entry_id,
                },
            )
        if on_recorded is not None:
            on_recorded(entry_id)

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
