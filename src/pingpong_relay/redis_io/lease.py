"""Leases on one Redis: which of the relays sharing it does a job only one may do.

`Lease` is one holder of a key among them; sending alert webhooks (`WebhookLease`) and
polling the --poll targets (`ingestion.pollers`) each hold one.

Every relay (and every worker) evaluates the same alerts from the same messages, so each
would POST every transition. Instead they compete for one key, `{pingpong}:lease:webhooks`
(SET NX with a TTL, renewed at a third of it by its holder only): the holder sends, the
others keep a short memory of recent transitions. The holder also notes, per alert, the
last transition it handed to the webhook sender (`{pingpong}:webhooks:sent`), so a relay
that takes the lease over sends what its predecessor never did, and not what it already
had. Between a holder's death and the takeover (up to the TTL) nothing is sent; the
newest transition of each alert in that gap is sent on takeover. A holder that dies
between sending and noting may have one transition sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson
from redis.exceptions import RedisError

from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.redis_io.history import KEY_PREFIX
from pingpong_relay.redis_io.subscriber import as_text
from pingpong_relay.tasks import cancel_and_wait

__all__ = ["SAME_TRANSITION_MS", "SENT_KEY", "Lease", "WebhookLease", "open_alerts", "unsent"]

log = logging.getLogger("pingpong_relay.lease")

LEASE_KEY: Final = KEY_PREFIX + "lease:webhooks"
SENT_KEY: Final = KEY_PREFIX + "webhooks:sent"
RECENT_TRANSITIONS: Final = 1000
# Relays evaluate on their own clocks: the same transition's since_ms differs between
# them by up to an evaluation interval or so.
SAME_TRANSITION_MS: Final = 10_000
_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def sent_field(rule: str, bot: str) -> str:
    """An alert's field in SENT_KEY."""
    return f"{rule}|{bot}"


def alert_key(alert: dict[str, Any]) -> str:
    """The SENT_KEY field of an alert transition (its `bot:alert` JSON): rule and bot."""
    return sent_field(alert["rule"], alert["bot"])


def unsent(
    recent: Iterable[dict[str, Any]], sent: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The newest transition of each alert, where it is not the one last sent (pure)."""
    newest: dict[str, dict[str, Any]] = {}
    for alert in recent:
        newest[alert_key(alert)] = alert
    missing = []
    for key, alert in newest.items():
        last = sent.get(key)
        if (
            last is None
            or last.get("state") != alert["state"]
            or abs(int(last.get("since_ms", 0)) - int(alert["since_ms"])) > SAME_TRANSITION_MS
        ):
            missing.append(alert)
    return missing


async def open_alerts(
    redis: Any, rules: Iterable[str], bots: Iterable[str]
) -> dict[str, list[tuple[str, str, float]]]:
    """Per bot, (rule, state, since_s) of each of its alerts under `rules` whose last
    transition sent (SENT_KEY) left it pending or firing: what a restarted relay takes up
    instead of notifying again. One round trip."""
    pairs = [(rule, bot) for bot in bots for rule in rules]
    if not pairs:
        return {}
    sent = await redis.hmget(SENT_KEY, [sent_field(rule, bot) for rule, bot in pairs])
    found: dict[str, list[tuple[str, str, float]]] = {}
    for (rule, bot), raw in zip(pairs, sent, strict=True):
        if raw is None:
            continue
        last = orjson.loads(raw)
        state = str(last.get("state"))
        if state in ("pending", "firing"):
            since_s = int(last.get("since_ms", 0)) / 1000.0
            found.setdefault(bot, []).append((rule, state, since_s))
    return found


class Lease:
    """One holder among the relays on one Redis for `key`: taken with SET NX and a TTL,
    renewed by its holder only (call `keep` every `renew_interval_s`), taken over by
    another once the holder stops renewing it. Redis errors propagate to the caller."""

    def __init__(
        self,
        redis: Any,
        key: str,
        holder_id: str,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.holder_id = holder_id
        self._redis = redis
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._held_until = 0.0

    @property
    def held(self) -> bool:
        """Whether this relay holds the lease now, by its own clock: renewed within the TTL."""
        # Not renewed within the TTL (Redis unreachable): another relay may hold it now.
        return self._clock() < self._held_until

    @property
    def renew_interval_s(self) -> float:
        """How often to `keep` it: a third of the TTL, so one slow round does not lose it."""
        return self._ttl_ms / 3000

    async def keep(self) -> tuple[bool, bool]:
        """Renews the lease when held, else tries to take it; (lost, acquired) say what
        changed in this round (a holder whose key had expired may lose and take it anew)."""
        started = self._clock()
        lost = False
        if self.held:
            if await self._redis.eval(_RENEW, 1, self.key, self.holder_id, self._ttl_ms):
                self._held_until = started + self._ttl_ms / 1000
                return False, False
            self._held_until = 0.0
            lost = True
        if await self._redis.set(self.key, self.holder_id, nx=True, px=self._ttl_ms):
            self._held_until = started + self._ttl_ms / 1000
            return lost, True
        return lost, False

    async def release(self) -> None:
        """Gives a held lease up, so another relay takes it at once rather than after the TTL."""
        if self.held:
            self._held_until = 0.0
            await self._redis.eval(_RELEASE, 1, self.key, self.holder_id)


class WebhookLease:
    """Gates alert notifications on holding the lease; hands them to `send` when held."""

    def __init__(
        self,
        redis_url: str,
        owner: str,
        send: Callable[[dict[str, Any]], None],
        *,
        ttl_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis_client(redis_url, socket_timeout=ttl_s / 3)
        self.owner = owner
        self._send = send
        self._lease = Lease(self._redis, LEASE_KEY, owner, ttl_s, clock=clock)
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT_TRANSITIONS)
        self._to_note: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        """Whether this relay holds the lease now, by its own clock: renewed within the TTL."""
        return self._lease.held

    def notify(self, alert: dict[str, Any]) -> None:
        """Every transition comes here, in every relay; only the holder sends it."""
        self._recent.append(alert)
        if self.held:
            self._deliver([alert])

    def _deliver(self, alerts: list[dict[str, Any]]) -> None:
        for alert in alerts:
            self._send(alert)
        self._to_note.extend(alerts)
        self._wake.set()

    def start(self) -> None:
        """Starts competing for the lease (and renewing it, once held) on the running loop."""
        self._task = asyncio.create_task(self._run(), name="webhook-lease")

    async def stop(self) -> None:
        """Stops, noting what was sent and releasing a held lease, so that another relay
        takes it over at once rather than after the TTL."""
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(RedisError, OSError):
            await self._note_sent()
            await self._lease.release()  # hand it over now rather than after the TTL
        await self._redis.aclose()

    async def _run(self) -> None:
        interval_s = self._lease.renew_interval_s
        while True:
            try:
                # Noting first keeps short the window in which a holder that dies has sent
                # a transition nobody noted (its successor would send it again).
                await self._note_sent()
                await self._keep()
            except (RedisError, OSError) as exc:
                log.warning("webhook lease: Redis failed (%s); trying again", exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_s)

    async def _keep(self) -> None:
        lost, acquired = await self._lease.keep()
        if lost:
            log.warning(
                "webhook lease lost: another relay sends alert webhooks now",
                extra={"event": "lease_lost", "owner": self.owner},
            )
        if acquired:
            log.info(
                "webhook lease acquired: this relay sends alert webhooks",
                extra={"event": "lease_acquired", "owner": self.owner},
            )
            sent = {
                as_text(key): orjson.loads(value)
                for key, value in (await self._redis.hgetall(SENT_KEY)).items()
            }
            missed = unsent(self._recent, sent)
            if missed:
                log.info(
                    "sending %d alert transition(s) no relay had sent",
                    len(missed),
                    extra={"event": "lease_catch_up", "alerts": len(missed)},
                )
                self._deliver(missed)

    async def _note_sent(self) -> None:
        if not self._to_note:
            return
        noted, self._to_note = self._to_note, []
        mapping: dict[Any, Any] = {
            alert_key(a): orjson.dumps({"state": a["state"], "since_ms": a["since_ms"]})
            for a in noted
        }
        try:
            await self._redis.hset(SENT_KEY, mapping=mapping)
        except (RedisError, OSError):
            self._to_note[:0] = noted  # noted next time
            raise
