"""Push tokens kept in Redis, so every relay on it accepts them: only each token's SHA-256
is stored (`{pingpong}:push:tokens`, hash → the bot it pushes as), and the open `start` of
a Healthchecks-style run (`{pingpong}:push:start:<hash>`, a day at most)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson

from pingpong_relay.ingest import new_token, token_hash, token_id, valid_token
from pingpong_relay.redis_io.history import KEY_PREFIX

__all__ = ["CACHE_S", "TOKENS_KEY", "PushTokens"]

TOKENS_KEY: Final = KEY_PREFIX + "push:tokens"
START_KEY: Final = KEY_PREFIX + "push:start:"
START_TTL_S: Final = 86_400
# A relay remembers a token it looked up this long: a revoked token stops working at
# every relay within it, and a busy pusher costs one lookup per interval, not per push.
CACHE_S: Final = 5.0


class PushTokens:
    """The tokens a relay accepts: the static ones (--push-token) and those in Redis."""

    def __init__(
        self,
        redis: Any,
        static: Iterable[tuple[str, str]] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.redis = redis
        self._static = {token_hash(token): bot for token, bot in static}
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._clock = clock
        self._wall_clock_ms = wall_clock_ms

    async def bot_for(self, token: str) -> str | None:
        """The bot `token` pushes as; None for a token no one issued (or one revoked).
        RedisError/OSError when Redis cannot be asked (the caller answers 503)."""
        if not valid_token(token):
            return None
        digest = token_hash(token)
        static = self._static.get(digest)
        if static is not None:
            return static
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        raw = await self.redis.hget(TOKENS_KEY, digest)
        bot = str(orjson.loads(raw)["bot"]) if raw else None
        if len(self._cache) >= 10_000:
            self._cache.clear()  # bounded: unknown tokens must not grow it without end
        self._cache[digest] = (now, bot)
        return bot

    async def add(self, bot: str) -> tuple[str, str]:
        """Issues a token for `bot`: (the token, shown once and never stored; its id)."""
        token = new_token()
        digest = token_hash(token)
        entry = {"bot": bot, "created_ms": self._wall_clock_ms()}
        await self.redis.hset(TOKENS_KEY, digest, orjson.dumps(entry))
        return token, token_id(digest)

    async def entries(self) -> list[dict[str, Any]]:
        """Every token in Redis as {id, bot, created_ms}, by bot then creation."""
        stored = await self.redis.hgetall(TOKENS_KEY)
        listed = [
            {"id": token_id(_text(digest)), **orjson.loads(raw)} for digest, raw in stored.items()
        ]
        return sorted(listed, key=lambda entry: (entry["bot"], entry["created_ms"]))

    async def revoke(self, what: str) -> list[dict[str, Any]]:
        """Deletes the tokens whose id is `what`, or (if none has that id) every token of bot
        `what`; returns those revoked."""
        stored = await self.redis.hgetall(TOKENS_KEY)
        by_id = {
            _text(digest): orjson.loads(raw)
            for digest, raw in stored.items()
            if token_id(_text(digest)) == what
        }
        chosen = by_id or {
            _text(digest): entry
            for digest, raw in stored.items()
            if (entry := orjson.loads(raw))["bot"] == what
        }
        if chosen:
            await self.redis.hdel(TOKENS_KEY, *chosen)
        return [{"id": token_id(digest), **entry} for digest, entry in chosen.items()]

    async def start(self, token: str, now_ms: int) -> None:
        """Notes that the run of the job pushing with `token` started at `now_ms`."""
        await self.redis.set(START_KEY + token_hash(token), now_ms, ex=START_TTL_S)

    async def take_start(self, token: str) -> int | None:
        """When the open run of `token`'s job started (and closes it); None if none is open."""
        raw = await self.redis.getdel(START_KEY + token_hash(token))
        return int(raw) if raw is not None else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
