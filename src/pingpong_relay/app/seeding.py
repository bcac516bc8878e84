"""Seeding the monitor from the history at start, so that a restart forgets no silent bot.

A relay that (re)starts while a bot is silent still judges it silent, and an alert
already notified is not notified again.
"""

from __future__ import annotations

import logging
import time

import orjson
from redis.exceptions import RedisError

from pingpong_relay.monitor import Monitor
from pingpong_relay.redis_io.history import History
from pingpong_relay.redis_io.lease import open_alerts

__all__ = ["seed_from_history"]

log = logging.getLogger("pingpong_relay.server")


async def seed_from_history(
    history: History, monitor: Monitor, *, max_bots: int, forget_after_s: float
) -> None:
    """Tells `monitor` the established bots the history heard within `forget_after_s`
    (0: ever), with their last message time: at most `max_bots`, the most recently heard
    first, read in two round trips whatever the number of bots in the history; bots on
    probation there (a flood of made-up ids) and bots gone for longer are left out. A
    silence alert that was already notified (the webhook lease notes each one sent) goes
    on from where it was instead of being notified again. Redis errors are logged, not
    raised: the relay serves without the seed."""
    started = time.perf_counter()
    silence_rules = [rule.name for rule in monitor.engine.rules if rule.kind == "silence"]
    try:
        known = await history.recent_established(max_bots, forget_after_s or None)
        notified = await open_alerts(history.redis, silence_rules, [bot for bot, _ in known])
    except (RedisError, OSError, orjson.JSONDecodeError) as exc:
        log.warning("could not read the known bots from the history: %s", exc)
        return
    seeded = sum(
        1 for bot, last_seen_s in known if monitor.seed(bot, last_seen_s, notified.get(bot, ()))
    )
    restored = sum(len(alerts) for alerts in notified.values())
    log.info(
        "%d bot(s) known from the history%s",
        seeded,
        f"; {restored} silence alert(s) already notified go on" if restored else "",
        extra={
            "event": "bots_seeded",
            "bots": seeded,
            "alerts_restored": restored,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
