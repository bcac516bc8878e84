"""`pingpong-relay serve | publish | watch | simulate`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import random
import signal
import sys
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from pingpong_relay import __version__
from pingpong_relay.app.auth_setup import token_verifier
from pingpong_relay.app.tls import tls_context
from pingpong_relay.auth import HMAC_ALGORITHMS, SCOPES
from pingpong_relay.defaults import DEFAULT_CHANNEL, DEFAULT_REDIS_URL
from pingpong_relay.logs import setup_logging
from pingpong_relay.monitor import rules_from_settings
from pingpong_relay.parsing import duration, non_negative_float, positive_float
from pingpong_relay.rules import Rule
from pingpong_relay.settings import (
    LOG_LEVELS,
    Settings,
    add_settings_arguments,
    current_environ,
    settings_from_args,
)
from pingpong_relay.subscriptions import EVENTS

if TYPE_CHECKING:
    from pingpong_relay.cluster.siblings import Worker

log = logging.getLogger("pingpong_relay.cli")

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_FAILURE = 1


def _run(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        return asyncio.run(coro)
    return uvloop.run(coro)


# --- serve ---------------------------------------------------------------------------
# Descriptors a relay needs besides its clients: listeners, Redis connections (subscription,
# history, lease, pool growth), log files, webhook and JWKS fetches, the packages it reads.
FD_HEADROOM = 200


def fd_headroom(settings: Settings) -> int:
    """Descriptors kept from WebSocket clients: the relay's own, and the HTTP plane's
    connections (--max-http-connections, plus the few past it that linger for their 503)."""
    if not settings.http_port:
        return FD_HEADROOM
    from pingpong_relay.http.server import REFUSAL_SLOTS

    return FD_HEADROOM + settings.max_http_connections + REFUSAL_SLOTS


def _client_capacity(settings: Settings) -> Settings:
    """Raises the open-file limit to its hard limit (every client is a descriptor), and
    caps --max-connections below it: past it the relay could not even answer 503."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return settings
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    headroom = fd_headroom(settings)
    room = max(1, soft - headroom)
    log.info(
        "open-file limit %d: room for %d clients (%d kept for the relay itself and HTTP)",
        soft,
        room,
        headroom,
        extra={"event": "fd_limit", "limit": soft, "room": room, "headroom": headroom},
    )
    if not settings.max_connections:
        return dataclasses.replace(settings, max_connections=room)
    if settings.max_connections > room:
        log.warning(
            "--max-connections %d is more than the open-file limit allows; refusing "
            "clients (503) past %d instead (raise the limit, e.g. LimitNOFILE=, for more)",
            settings.max_connections,
            room,
            extra={"event": "max_connections_capped", "max_connections": room},
        )
        settings = dataclasses.replace(settings, max_connections=room)
    return settings


async def _serve(settings: Settings, rules: Sequence[Rule], worker: Worker | None = None) -> int:
    from pingpong_relay.app.relay import Relay

    settings = _client_capacity(settings)
    relay = Relay(settings, rules=rules, worker=worker)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await relay.start()
    except OSError as exc:
        log.error("cannot start the relay: %s", exc, extra={"event": "start_failed"})
        await relay.stop()
        return EXIT_FAILURE
    except RuntimeError as exc:
        log.error("cannot start the relay: %s", exc, extra={"event": "start_failed"})
        return EXIT_FAILURE
    await stop.wait()
    try:
        await asyncio.wait_for(relay.stop(), settings.shutdown_timeout + 1.5)
    except TimeoutError:
        log.error("shutdown took too long; exiting anyway")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args, current_environ())
        rules = rules_from_settings(settings)
        token_verifier(settings)
        tls_context(settings)
    except ValueError as exc:
        print(f"pingpong-relay serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop_logging = setup_logging(settings.log_level, settings.log_format, background=True)
    try:
        if settings.workers > 1:
            from pingpong_relay.cluster.supervisor import supervise

            return _run(supervise(settings, run_relay))
        return _run(_serve(settings, rules))
    finally:
        stop_logging()


def run_relay(settings: Settings, worker: Worker) -> int:
    """One worker of `serve --workers N` (its process was started by the supervisor)."""
    return _run(_serve(settings, rules_from_settings(settings), worker))


# --- publish -------------------------------------------------------------------------
async def _publish(args: argparse.Namespace) -> int:
    from pingpong_relay.publisher import Publisher, PublishError

    async with Publisher(args.redis_url, args.channel) as bot:
        try:
            receivers = await bot.publish(args.kind, args.latency)
        except PublishError:
            return EXIT_FAILURE
    print(
        f"published {args.kind} (latency {args.latency:g} ms) to {args.channel}: "
        f"{receivers} subscriber(s)"
    )
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "text")
    return _run(_publish(args))


# --- watch ---------------------------------------------------------------------------
async def _watch(args: argparse.Namespace) -> int:
    from pingpong_relay.client import Heartbeat, describe, one_line_json, received_envelopes

    count = 0
    async for text, envelope in received_envelopes(args.url, reconnect=not args.once):
        if args.json:
            # As received, not encoded again: that could fail where reading did not.
            print(one_line_json(text), flush=True)
        elif args.delays and envelope.get("type") == "bot:pingpong":
            beat = Heartbeat(envelope, time.time_ns() / 1e6)
            print(
                f"{describe(envelope)} | bot→relay {_ms(beat.bot_to_relay_ms)}, "
                f"relay→client {_ms(beat.relay_to_client_ms)}",
                flush=True,
            )
        else:
            print(describe(envelope), flush=True)
        count += 1
        if args.count and count >= args.count:
            break
    return EXIT_OK


def _ms(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.1f} ms"


def cmd_watch(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "text")
    with contextlib.suppress(KeyboardInterrupt):
        return _run(_watch(args))
    return EXIT_OK


# --- simulate ------------------------------------------------------------------------
class LatencyWalk:
    """Realistic exchange latency: a mean-reverting random walk with occasional spikes."""

    def __init__(self, mean_ms: float, rng: random.Random) -> None:
        self.mean_ms = mean_ms
        self.current_ms = mean_ms
        self._rng = rng

    def next(self) -> float:
        rng = self._rng
        self.current_ms += 0.2 * (self.mean_ms - self.current_ms) + rng.gauss(0, self.mean_ms * 0.1)
        value = max(0.1, self.current_ms)
        if rng.random() < 0.02:  # a congested exchange now and then
            value *= rng.uniform(3, 8)
        return round(value, 2)


async def _simulate(args: argparse.Namespace) -> int:
    from pingpong_relay.publisher import Publisher, PublishError

    walk = LatencyWalk(args.latency, random.Random(args.seed))
    interval_s = 1.0 / args.rate
    sent = 0
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with Publisher(args.redis_url, args.channel) as bot:
        next_at = loop.time()
        while not stop.is_set() and (not args.count or sent < args.count):
            kind = "ping" if sent % 2 == 0 else "pong"
            with contextlib.suppress(PublishError):  # logged by the publisher; keep going
                await bot.publish(kind, walk.next())
            sent += 1
            next_at += interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, "text")
    return _run(_simulate(args))


# --- token ---------------------------------------------------------------------------
def cmd_token(args: argparse.Namespace) -> int:
    from pingpong_relay.auth import mint

    secret = args.jwt_secret or current_environ().get("PINGPONG_JWT_SECRET", "")
    if len(secret) < 32:
        print(
            "pingpong-relay token: give the relay's HMAC secret (at least 32 characters) "
            "with --jwt-secret or PINGPONG_JWT_SECRET",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        token = mint(
            secret,
            args.sub,
            now_s=time.time(),
            ttl_s=args.ttl,
            bots=args.bots,
            events=args.events,
            audience=args.audience,
            issuer=args.issuer,
            algorithm=args.alg,
            scopes=args.scope or (),
        )
    except ValueError as exc:
        print(f"pingpong-relay token: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(token)
    return EXIT_OK


# --- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pingpong-relay",
        description="Relays trading-bot ping/pong heartbeats from Redis Pub/Sub to "
        "WebSocket clients, live.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the relay",
        description="Subscribe to the bot channel(s) in Redis and broadcast every valid "
        "heartbeat to every WebSocket client. Every flag also reads PINGPONG_<FLAG> from "
        "the environment; a flag given on the command line wins.",
    )
    add_settings_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

    def client_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--log-level", type=str.upper, choices=LOG_LEVELS, default="WARNING", help="log level"
        )

    def redis_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--redis-url",
            default=DEFAULT_REDIS_URL,
            help="Redis to publish to (the relay logs this URL at start)",
        )
        sub.add_argument("--channel", default=DEFAULT_CHANNEL, help="channel to publish on")
        client_options(sub)

    publish = commands.add_parser(
        "publish",
        help="publish one ping or pong, as a bot does",
        description="Publish one heartbeat to Redis in the design's format and print how "
        "many subscribers received it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    publish.add_argument("kind", choices=("ping", "pong"), help="message type")
    publish.add_argument(
        "--latency", type=non_negative_float, required=True, help="measured exchange latency, in ms"
    )
    redis_options(publish)
    publish.set_defaults(handler=cmd_publish)

    watch = commands.add_parser(
        "watch",
        help="print what a relay broadcasts",
        description="Connect to a relay and print each message: type, latency and time, "
        "or the raw JSON with --json. Reconnects by itself unless --once.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    watch.add_argument("url", nargs="?", default="ws://localhost:2808/", help="relay URL")
    watch.add_argument("--json", action="store_true", help="print each message as raw JSON")
    watch.add_argument(
        "--delays",
        action="store_true",
        help="also print the delay split: bot → relay (bot clock to relay clock) and "
        "relay → client (relay clock to this machine's clock)",
    )
    watch.add_argument(
        "--count",
        type=int,
        default=0,
        help="exit after this many messages (0: run until interrupted)",
    )
    watch.add_argument(
        "--once",
        action="store_true",
        help="exit when the connection closes instead of reconnecting",
    )
    client_options(watch)
    watch.set_defaults(handler=cmd_watch)

    simulate = commands.add_parser(
        "simulate",
        help="a simulated bot publishing pings and pongs",
        description="Publish alternating pings and pongs with realistic, varying latency "
        "at a steady rate, so the relay has something to show.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    simulate.add_argument("--rate", type=positive_float, default=1.0, help="messages per second")
    simulate.add_argument(
        "--latency",
        type=positive_float,
        default=40.0,
        help="mean exchange latency to simulate, in ms",
    )
    simulate.add_argument(
        "--count",
        type=int,
        default=0,
        help="stop after this many messages (0: run until interrupted)",
    )
    simulate.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    redis_options(simulate)
    simulate.set_defaults(handler=cmd_simulate)

    token = commands.add_parser(
        "token",
        help="mint a JWT for a client (HMAC secrets only)",
        description="Print a signed token that `serve --auth jwt` with the same secret "
        "accepts. Scope it with --bots and --events; without them it sees everything.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    token.add_argument("--sub", required=True, help="who the token is for (the `sub` claim)")
    token.add_argument(
        "--ttl", type=duration, default=3600.0, help="lifetime: seconds or e.g. 1h, 30m, 7d"
    )
    token.add_argument(
        "--bots",
        nargs="+",
        default=None,
        metavar="PATTERN",
        help="bots the token may see (shell-style patterns)",
    )
    token.add_argument(
        "--events", nargs="+", default=None, choices=EVENTS, help="events the token may receive"
    )
    token.add_argument(
        "--scope",
        nargs="+",
        default=None,
        choices=SCOPES,
        help="extra rights: metrics (may read /metrics when the relay uses --auth jwt)",
    )
    token.add_argument("--audience", default=None, help="`aud` claim")
    token.add_argument("--issuer", default=None, help="`iss` claim")
    token.add_argument("--alg", default="HS256", choices=HMAC_ALGORITHMS, help="HMAC algorithm")
    token.add_argument(
        "--jwt-secret",
        default="",
        help="the relay's secret (prefer the PINGPONG_JWT_SECRET env var)",
    )
    token.set_defaults(handler=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
