"""The history's appends: a bounded queue and one worker writing each accepted message to
its bot's stream in Redis, exactly once across relays (the record script), never delaying
the broadcast.

Appends go over a lean connection of their own (`redis_io.resp`) where the URL allows one,
several in one write when several are queued; over redis-py for a cluster or Sentinel URL.
A failed append is retried with backoff until Redis takes it (the queue holds `queue_size`
messages meanwhile; past that the oldest waiting message is dropped and counted, never
silently).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from pingpong_relay.backoff import Backoff
from pingpong_relay.redis_io.history_keys import (
    BOTS_KEY,
    ESTABLISHED_KEY,
    FIRST_KEY,
    SEEN_PREFIX,
    SEEN_TTL_MS,
    SEQ_KEY,
    stream_key,
)
from pingpong_relay.redis_io.resp import RespConnection, lean_url
from pingpong_relay.redis_io.subscriber import as_text
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S
from pingpong_relay.tasks import cancel_and_wait, drain_then_cancel
from pingpong_relay.telemetry.metrics import RelayMetrics

__all__ = ["APPEND_BATCH", "Appender", "Recorded", "fingerprint"]

log = logging.getLogger("pingpong_relay.history")

Recorded = Callable[[str], None]
# One queued append: bot, channel, raw message, relay ms, what to call with its id.
_Append = tuple[str, str, bytes, int, Recorded | None]
# At most this many queued appends go to Redis in one write.
APPEND_BATCH: Final = 256
# The record script's keys come first in `_script_call`, then its arguments.
_SCRIPT_KEYS: Final = 6
# How long Redis has to answer an append (as redis-py's socket timeout below).
_REPLY_TIMEOUT_S: Final = 10.0

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


def fingerprint(channel: str, raw: bytes) -> str:
    """What identifies one published message across relays: its channel and exact bytes.

    Two identical payloads on one channel within SEEN_TTL_MS count as one; a bot's
    message carries its own millisecond timestamp, so real repeats do not collide.
    """
    digest = hashlib.blake2b(raw, digest_size=16, person=b"pingpong-relay")
    digest.update(b"\0" + channel.encode())
    return SEEN_PREFIX + digest.hexdigest()


class Appender:
    """Queues messages and appends them to the history in Redis, in order."""

    def __init__(
        self,
        url: str,
        redis: aioredis.Redis,
        metrics: RelayMetrics,
        *,
        retention_ms: int,
        max_entries: int,
        queue_size: int,
        reply_timeout_s: float = _REPLY_TIMEOUT_S,
    ) -> None:
        self._url = url
        self._lean = lean_url(url)
        self._connection: RespConnection | None = None
        # The record script on redis-py's client: its SHA, and the cluster/Sentinel path.
        self._script = redis.register_script(_RECORD_SCRIPT)
        self._metrics = metrics
        self.retention_ms = retention_ms
        self.max_entries = max_entries
        self._queue: asyncio.Queue[_Append] = asyncio.Queue(maxsize=queue_size)
        self._reply_timeout_s = reply_timeout_s
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._backoff = Backoff(base_s=0.1, cap_s=5.0)

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
        """Starts the worker, and its watchdog, on the running loop."""
        self._task = asyncio.create_task(self._run(), name="history-recorder")
        self._watchdog = asyncio.create_task(self._watch(), name="history-watchdog")

    async def stop(self, drain_timeout_s: float) -> None:
        """Gives queued messages up to `drain_timeout_s` seconds to be appended, then stops
        the worker and closes its connection."""
        await drain_then_cancel(self._queue, self._task, drain_timeout_s)
        self._task = None
        await cancel_and_wait(self._watchdog)
        self._watchdog = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

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
                    connection.call("EVALSHA", sha, _SCRIPT_KEYS, *self._script_call(item))
                    for item in batch
                ]
                # A server that stops answering: _watch closes the connection.
                replies = [await future for future in futures]
                break
            except (RedisError, OSError) as exc:
                # NOSCRIPT (a flushed script cache) too: a new connection loads it again.
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None
                await self._retry_pause(attempt, exc)
                attempt += 1
        for item, (created, entry_id) in zip(batch, replies, strict=True):
            self._appended(item, created, entry_id)

    async def _watch(self) -> None:
        """Closes a lean connection whose server has not answered for the reply timeout (its
        calls fail, and the batch is retried on a new one): one timer for the connection,
        not one per append."""
        timeout_s = self._reply_timeout_s
        while True:
            await asyncio.sleep(timeout_s / 4)
            connection = self._connection
            if connection is not None and connection.unanswered_s() > timeout_s:
                connection.close(f"no reply from Redis within {timeout_s:g} s")

    async def _lean_connection(self) -> RespConnection:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await RespConnection.open(self._url, self._reply_timeout_s)
            try:
                async with asyncio.timeout(self._reply_timeout_s):
                    await connection.call("SCRIPT", "LOAD", _RECORD_SCRIPT)
            except BaseException:
                connection.close()
                raise
            self._connection = connection
        return connection

    async def _append(self, item: _Append) -> None:
        """Appends one message with redis-py (a cluster or Sentinel URL), retrying until
        Redis takes it."""
        attempt = 0
        while True:
            try:
                keys_and_args = self._script_call(item)
                created, entry_id = await self._script(
                    keys=keys_and_args[:_SCRIPT_KEYS], args=keys_and_args[_SCRIPT_KEYS:]
                )
                break
            except (RedisError, OSError) as exc:
                await self._retry_pause(attempt, exc)
                attempt += 1
        self._appended(item, created, entry_id)

    def _script_call(self, item: _Append) -> list[Any]:
        """The record script's keys (_SCRIPT_KEYS of them), then its nine arguments, for one
        queued append."""
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
