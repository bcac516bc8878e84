"""The mute store: every relay's mutes in one Redis hash, cached here for the alert path.

Mutes live in `{pingpong}:mutes` (field: the mute's id, value: its JSON), shared by every
relay on one Redis and kept across restarts. The hash expires (a Redis TTL) when its last
mute ends; ended mutes are pruned as they are read. Each relay reads the hash every
`refresh_s` and keeps the answer, so deciding whether an alert is muted never waits on
Redis; a mute made or expired through this relay is in its cache at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Final

import orjson
from redis.exceptions import RedisError

from pingpong_relay.mutes import Mute
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.redis_io.history import KEY_PREFIX
from pingpong_relay.redis_io.subscriber import as_text
from pingpong_relay.tasks import cancel_and_wait

__all__ = ["MUTES_KEY", "MuteStore"]

log = logging.getLogger("pingpong_relay.mutes")

MUTES_KEY: Final = KEY_PREFIX + "mutes"
# Adds a mute and makes the hash outlive its latest mute (ARGV[3]: ms until its end),
# never shortening its TTL. PTTL, not PEXPIRETIME: Redis 6.2 (the embedded one) serves too.
_ADD: Final = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


class MuteStore:
    """Adds, lists and expires mutes in Redis; `cached` is what the alert path reads."""

    def __init__(
        self,
        redis_url: str,
        *,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        on_refresh: Callable[[], object] = lambda: None,
    ) -> None:
        self._redis = redis_client(redis_url, socket_timeout=5.0)
        self._refresh_s = refresh_s
        self._clock = clock
        self.on_refresh = on_refresh
        self.cached: tuple[Mute, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._unreadable: set[str] = set()  # logged once each, not every refresh

    async def add(self, mute: Mute) -> None:
        """Stores a mute (RedisError when Redis fails) and caches it at once."""
        left_ms = max(1, round((mute.ends_at_s - self._clock()) * 1000))
        await self._redis.eval(_ADD, 1, MUTES_KEY, mute.id, orjson.dumps(mute.to_json()), left_ms)
        self.cached = (*[m for m in self.cached if m.id != mute.id], mute)
        self.on_refresh()

    async def expire(self, mute_id: str) -> bool:
        """Ends a mute now; False when no such mute is stored (never was, or has ended)."""
        removed = bool(await self._redis.hdel(MUTES_KEY, mute_id))
        self.cached = tuple(m for m in self.cached if m.id != mute_id)
        self.on_refresh()
        return removed

    async def load(self) -> list[Mute]:
        """Every stored mute that has not ended, read from Redis now; ended ones are pruned."""
        stored = await self._redis.hgetall(MUTES_KEY)
        now_s = self._clock()
        mutes: list[Mute] = []
        ended: list[str] = []
        for field, value in stored.items():
            try:
                mute = Mute.from_json(orjson.loads(value))
            except (ValueError, KeyError, TypeError) as exc:
                name = as_text(field)[:100]
                if name not in self._unreadable:
                    self._unreadable.add(name)
                    log.warning(
                        "mute %s in Redis is unreadable (%s); ignored",
                        name,
                        exc,
                        extra={"event": "mute_unreadable"},
                    )
                continue
            if mute.ends_at_s <= now_s:
                ended.append(mute.id)
            else:
                mutes.append(mute)
        if ended:
            await self._redis.hdel(MUTES_KEY, *ended)
        self.cached = tuple(mutes)
        return mutes

    def start(self) -> None:
        """Starts refreshing the cache every `refresh_s` on the running loop."""
        self._task = asyncio.create_task(self._run(), name="mute-refresh")

    async def stop(self) -> None:
        """Stops refreshing and closes the connection."""
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(RedisError, OSError):
            await self._redis.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.load()
                if self._failing:
                    log.info("mutes readable again", extra={"event": "mutes_recovered"})
                self._failing = False
            except (RedisError, OSError) as exc:
                if not self._failing:  # once per outage; the last known mutes still hold
                    log.warning(
                        "mutes: Redis failed (%s); keeping the last known mutes",
                        exc,
                        extra={"event": "mutes_unreadable"},
                    )
                self._failing = True
            self.on_refresh()
            await asyncio.sleep(self._refresh_s)
