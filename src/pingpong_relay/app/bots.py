"""The subcommands that act as bots: `publish` one heartbeat, `simulate` several bots.

Each says on stderr, in one line, what a newcomer would otherwise have to guess: that Redis
cannot be reached (and exits 1 within REDIS_DEADLINE_S), that nobody is subscribed to
the channel, and, for `simulate`, when Redis goes away and comes back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import sys
from typing import TYPE_CHECKING, Final

from pingpong_relay.app.commands import EXIT_FAILURE, EXIT_OK, run_async
from pingpong_relay.app.usage import print_usage_error
from pingpong_relay.logs import setup_logging
from pingpong_relay.messages import check_source, format_latency
from pingpong_relay.urls import redact_url

if TYPE_CHECKING:
    from pingpong_relay.publisher import Publisher

__all__ = ["REDIS_DEADLINE_S", "LatencyWalk", "bot_names", "cmd_publish", "cmd_simulate"]

# Each Redis round trip of a bot command gives up after this long, so that an unreachable
# Redis (a black-holed address, not only a refused port) ends the command within 10 s.
REDIS_DEADLINE_S: Final = 8.0
_REDIS_TIMEOUT_S: Final = 3.0  # per connection attempt and per reply


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _unreachable(command: str, redis_url: str, reason: str) -> int:
    _say(f"{command}: cannot reach Redis at {redact_url(redis_url)}: {reason}")
    return EXIT_FAILURE


async def _within_deadline(publisher: Publisher, kind: str, latency_ms: float, source: str) -> int:
    async with asyncio.timeout(REDIS_DEADLINE_S):
        return await publisher.publish(kind, latency_ms, source=source)


# --- publish -------------------------------------------------------------------------
async def _publish(args: argparse.Namespace) -> int:
    # Lazy: redis is loaded only by the subcommands that publish.
    from pingpong_relay.publisher import Publisher, PublishError

    async with Publisher(
        args.redis_url, args.channel, source=args.source, timeout_s=_REDIS_TIMEOUT_S
    ) as bot:
        try:
            how = ""
            latency_ms = args.latency
            if latency_ms is None:
                async with asyncio.timeout(REDIS_DEADLINE_S):
                    latency_ms = round(await bot.round_trip_ms(), 3)
                how = ", a Redis round trip"
            receivers = await _within_deadline(bot, args.kind, latency_ms, args.source)
        except PublishError as exc:
            return _unreachable("publish", args.redis_url, exc.reason)
        except TimeoutError:
            return _unreachable("publish", args.redis_url, f"no answer in {REDIS_DEADLINE_S:g} s")
    print(
        f"published {args.kind} (latency {format_latency(latency_ms)}{how}) to {args.channel} "
        f"as {args.channel}/{args.source}: {receivers} subscriber(s)"
    )
    if not receivers:
        _say(f"publish: no relay is subscribed to {args.channel}; nobody received it")
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    """Runs `publish`: one heartbeat to Redis, and how many subscribers got it; exit 1 when
    Redis cannot be reached."""
    setup_logging(args.log_level, "text")
    return run_async(_publish(args))


# --- simulate ------------------------------------------------------------------------
class LatencyWalk:
    """Realistic exchange latency: a mean-reverting random walk with occasional spikes."""

    def __init__(self, mean_ms: float, rng: random.Random) -> None:
        self.mean_ms = mean_ms
        self.current_ms = mean_ms
        self._rng = rng

    def next(self) -> float:
        """The next latency, in ms (at least 0.1, rounded to 0.01)."""
        rng = self._rng
        self.current_ms += 0.2 * (self.mean_ms - self.current_ms) + rng.gauss(0, self.mean_ms * 0.1)
        value = max(0.1, self.current_ms)
        if rng.random() < 0.02:  # a congested exchange now and then
            value *= rng.uniform(3, 8)
        return round(value, 2)


def bot_names(source: str, bots: int) -> list[str]:
    """The simulated bots' names: `source` for one, `source-1` … `source-N` for several;
    ValueError when a name is one the relay would refuse."""
    names = [source] if bots == 1 else [f"{source}-{n}" for n in range(1, bots + 1)]
    for name in names:
        check_source(name)
    return names


class _Narrator:
    """What `simulate` says on stderr as it runs, each change once: Redis lost and back,
    nobody subscribed and somebody again."""

    def __init__(self, redis_url: str, channel: str) -> None:
        self._where = redact_url(redis_url)
        self._channel = channel
        self._lost = False
        self._receivers: int | None = None

    def failed(self, reason: str) -> None:
        """A publish failed: said once until one succeeds again."""
        if not self._lost:
            _say(f"simulate: lost Redis at {self._where}: {reason}; still trying at the same rate")
            self._lost = True

    def published(self, receivers: int) -> None:
        """A publish reached `receivers` subscribers."""
        if self._lost:
            _say(f"simulate: Redis at {self._where} is back")
            self._lost = False
        if receivers == 0 and self._receivers != 0:
            _say(
                f"simulate: no relay is subscribed to {self._channel}; "
                "nobody receives the heartbeats"
            )
        elif receivers and self._receivers == 0:
            _say(f"simulate: {receivers} subscriber(s) on {self._channel} now")
        self._receivers = receivers


def _started(args: argparse.Namespace, names: list[str]) -> str:
    where = redact_url(args.redis_url)
    if len(names) == 1:
        return (
            f"simulate: bot {args.channel}/{names[0]} publishes to {where}, "
            f"{args.rate:g} message(s) a second; Ctrl-C stops"
        )
    return (
        f"simulate: {len(names)} bots ({args.channel}/{', '.join(names)}) publish to {where}, "
        f"{args.rate:g} message(s) a second each; Ctrl-C stops"
    )


async def _simulate(args: argparse.Namespace, names: list[str]) -> int:
    # Lazy: redis is loaded only by the subcommands that publish.
    from pingpong_relay.publisher import Publisher, PublishError

    rng = random.Random(args.seed)
    walks = [LatencyWalk(args.latency, rng) for _ in names]
    sent = [0] * len(names)
    interval_s = 1.0 / (args.rate * len(names))  # the bots take turns
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Publisher(args.redis_url, args.channel, timeout_s=_REDIS_TIMEOUT_S) as bot:
        try:
            async with asyncio.timeout(REDIS_DEADLINE_S):
                await bot.round_trip_ms()
        except PublishError as exc:
            return _unreachable("simulate", args.redis_url, exc.reason)
        except TimeoutError:
            return _unreachable("simulate", args.redis_url, f"no answer in {REDIS_DEADLINE_S:g} s")
        _say(_started(args, names))
        narrator = _Narrator(args.redis_url, args.channel)
        turn, next_at = 0, loop.time()
        while not stop.is_set() and not (args.count and min(sent) >= args.count):
            index, turn = turn % len(names), turn + 1
            if args.count and sent[index] >= args.count:
                continue
            kind = "ping" if sent[index] % 2 == 0 else "pong"
            try:
                receivers = await _within_deadline(bot, kind, walks[index].next(), names[index])
            except PublishError as exc:
                narrator.failed(exc.reason)
            except TimeoutError:
                narrator.failed(f"no answer in {REDIS_DEADLINE_S:g} s")
            else:
                sent[index] += 1
                narrator.published(receivers)
            # The same rate after an outage: no burst to catch up on what was missed.
            next_at = max(next_at + interval_s, loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), next_at - loop.time())
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    """Runs `simulate`: --bots bots publishing at --rate each until --count or a signal;
    exit 1 when Redis cannot be reached at the start (later it keeps trying)."""
    try:
        names = bot_names(args.source, args.bots)
    except ValueError as exc:
        return print_usage_error("pingpong-relay simulate", f"--source/--bots: {exc}")
    setup_logging(args.log_level, "text")
    return run_async(_simulate(args, names))
