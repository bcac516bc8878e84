"""The `pingpong-relay` command line: one parser per subcommand, each bound to its handler."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TypeAlias

from pingpong_relay import __version__
from pingpong_relay.app.bots import cmd_publish, cmd_simulate
from pingpong_relay.app.mute_command import cmd_mute
from pingpong_relay.app.push_command import cmd_push
from pingpong_relay.app.serve import cmd_serve
from pingpong_relay.app.tools import cmd_token, cmd_watch
from pingpong_relay.app.usage import CommandLineParser, DefaultsHelpFormatter
from pingpong_relay.auth import HMAC_ALGORITHMS, SCOPES
from pingpong_relay.defaults import DEFAULT_CHANNEL, DEFAULT_REDIS_URL
from pingpong_relay.parsing import (
    bot_source,
    duration,
    non_negative_float,
    positive_float,
    positive_int,
    redis_url,
)
from pingpong_relay.settings_flags import add_settings_arguments
from pingpong_relay.settings_serving import LOG_LEVELS
from pingpong_relay.subscriptions import EVENTS

__all__ = ["build_parser", "main"]

# Where each subcommand's parser is added (a string: argparse's class is generic only to
# the type checker).
Commands: TypeAlias = "argparse._SubParsersAction[CommandLineParser]"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: `serve` and the helper subcommands."""
    parser = CommandLineParser(
        prog="pingpong-relay",
        description="Relays trading-bot ping/pong heartbeats from Redis Pub/Sub to "
        "WebSocket clients, live.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (
        _add_serve,
        _add_publish,
        _add_watch,
        _add_simulate,
        _add_token,
        _add_mute,
        _add_push,
    ):
        add(commands)
    return parser


def _add_serve(commands: Commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the relay",
        usage="%(prog)s [--FLAG VALUE ...]",
        description="Subscribe to the bot channel(s) in Redis and broadcast every valid "
        "heartbeat to every WebSocket client. Every flag also reads PINGPONG_<FLAG> from "
        "the environment; a flag given on the command line wins. The flags come by topic.",
    )
    add_settings_arguments(serve)
    serve.set_defaults(handler=cmd_serve)


def _client_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, default="WARNING", help="log level"
    )


def _redis_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--redis-url",
        type=redis_url,
        default=DEFAULT_REDIS_URL,
        help="Redis to publish to (the relay logs this URL at start)",
    )
    sub.add_argument("--channel", default=DEFAULT_CHANNEL, help="channel to publish on")
    _client_options(sub)


def _source_option(sub: argparse.ArgumentParser, help: str) -> None:
    sub.add_argument("--source", type=bot_source, default="bot", metavar="NAME", help=help)


def _add_publish(commands: Commands) -> None:
    publish = commands.add_parser(
        "publish",
        help="publish one ping or pong, as a bot does",
        description="Publish one heartbeat to Redis in the design's format and print how "
        "many subscribers received it; warn when none did. Exit 1, in one line, when Redis "
        "cannot be reached.",
        formatter_class=DefaultsHelpFormatter,
    )
    publish.add_argument("kind", choices=("ping", "pong"), help="message type")
    publish.add_argument(
        "--latency",
        type=non_negative_float,
        default=None,
        metavar="MS",
        help="the latency to report, in ms (default: measured: the round trip of a Redis "
        "PING, just before publishing)",
    )
    _source_option(
        publish,
        "the bot's name, its message's source; the relay's id for the bot is <channel>/<source>",
    )
    _redis_options(publish)
    publish.set_defaults(handler=cmd_publish)


def _add_watch(commands: Commands) -> None:
    watch = commands.add_parser(
        "watch",
        help="print what a relay broadcasts",
        description="Connect to a relay and print each message: type, latency and time, "
        "or the raw JSON with --json. Reconnects by itself unless --once, after 0.5-1 s "
        "doubling to 10-20 s, saying so on stderr each time. A relay that refuses the "
        "handshake (a 4xx: a bad token, origin or query) is not retried: watch prints its "
        "status and reason and exits 1, as --once does when it never connects.",
        formatter_class=DefaultsHelpFormatter,
    )
    watch.add_argument("url", nargs="?", default="ws://localhost:2808/", help="relay URL")
    watch.add_argument(
        "--token",
        default=None,
        help="JWT for a relay that runs --auth jwt, sent as Authorization: Bearer "
        "(default: the PINGPONG_TOKEN env var, which ps cannot show)",
        metavar="JWT",
    )
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
    _client_options(watch)
    watch.set_defaults(handler=cmd_watch)


def _add_simulate(commands: Commands) -> None:
    simulate = commands.add_parser(
        "simulate",
        help="simulated bots publishing pings and pongs",
        description="Publish alternating pings and pongs with realistic, varying latency "
        "at a steady rate, as one bot or several, so the relay has something to show. Exit "
        "1, in one line, when Redis cannot be reached at the start; later, say once that it "
        "went away and keep trying at the same rate. Warn when nobody is subscribed.",
        formatter_class=DefaultsHelpFormatter,
    )
    _source_option(
        simulate,
        "the bot's name (its id at the relay: <channel>/<source>); "
        "with --bots N, the bots are <source>-1 … <source>-N",
    )
    simulate.add_argument(
        "--bots", type=positive_int, default=1, metavar="N", help="how many bots to simulate"
    )
    simulate.add_argument(
        "--rate", type=positive_float, default=1.0, help="messages per second, of each bot"
    )
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
        help="stop after this many messages of each bot (0: run until interrupted)",
    )
    simulate.add_argument("--seed", type=int, default=None, help="random seed, for repeatable runs")
    _redis_options(simulate)
    simulate.set_defaults(handler=cmd_simulate)


def _add_token(commands: Commands) -> None:
    token = commands.add_parser(
        "token",
        help="mint a JWT for a client (HMAC secrets only)",
        description="Print a signed token that `serve --auth jwt` with the same secret "
        "accepts. Scope it with --bots and --events; without them it sees everything.",
        formatter_class=DefaultsHelpFormatter,
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
        help="extra rights: metrics (may read /metrics when the relay uses --auth jwt), "
        "mute (may create and expire mutes)",
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


def _actions(
    commands: Commands, name: str, help: str, description: str
) -> tuple[CommandLineParser, Commands]:
    """A subcommand whose first argument is an action (`mute add`, `push list`)."""
    parser = commands.add_parser(name, help=help, description=description)
    return parser, parser.add_subparsers(dest="action", metavar="ACTION", required=True)


def _action(actions: Commands, name: str, help: str) -> CommandLineParser:
    """One action of such a subcommand, its --help showing defaults."""
    return actions.add_parser(name, help=help, formatter_class=DefaultsHelpFormatter)


def _add_mute(commands: Commands) -> None:
    mute, actions = _actions(
        commands,
        "mute",
        "add, list or expire mutes (maintenance windows)",
        "Mutes live in the relays' Redis: a muted alert is still shown, marked muted, but "
        "notifies no channel and no webhook until the mute ends. This talks to Redis directly "
        "(--redis-url, as publish does); the HTTP API is /api/mutes.",
    )
    add = _action(actions, "add", "mute bots (patterns) for a while or in a window")
    add.add_argument(
        "patterns", nargs="+", metavar="PATTERN", help="bot patterns, e.g. 'bot:pingpong/gate-*'"
    )
    add.add_argument(
        "--for", dest="duration", default=None, metavar="DURATION", help="how long, e.g. 2h, 30m"
    )
    add.add_argument(
        "--from",
        dest="starts_at",
        default=None,
        metavar="TIME",
        help="start (ISO 8601 with offset; default: now)",
    )
    add.add_argument(
        "--until",
        dest="ends_at",
        default=None,
        metavar="TIME",
        help="end (ISO 8601 with offset), instead of --for",
    )
    add.add_argument(
        "--rule",
        action="append",
        default=None,
        metavar="RULE",
        help="mute only this rule (repeatable; default: every rule)",
    )
    add.add_argument("-m", "--message", default=None, help="why: a comment shown with the mute")
    listing = _action(actions, "list", "mutes in force and scheduled")
    listing.add_argument("--json", action="store_true", help="print the listing as JSON")
    expire = _action(actions, "expire", "end a mute now")
    expire.add_argument("id", help="the mute's id, as add printed it")
    for sub in (add, listing, expire):
        sub.add_argument(
            "--redis-url", type=redis_url, default=DEFAULT_REDIS_URL, help="the relays' Redis"
        )
        _client_options(sub)
    mute.set_defaults(handler=cmd_mute)


def _add_push(commands: Commands) -> None:
    push, actions = _actions(
        commands,
        "push",
        "issue, list or revoke push tokens (push and ping URLs for bots without Redis)",
        "A push token lets one bot report through /api/push/TOKEN (Uptime Kuma's push URL) "
        "and /ping/TOKEN (Healthchecks' ping URL) on the HTTP port. Tokens live in the relays' "
        "Redis, hashed: add prints the URLs once. Static tokens can be given to serve instead "
        "(--push-token TOKEN=BOT).",
    )
    add = _action(actions, "add", "issue a token for a bot and print its URLs")
    add.add_argument("bot", type=bot_source, help="the bot's name (its source), e.g. cron-backup")
    add.add_argument(
        "--url",
        default="http://127.0.0.1:2809",
        help="the relay's HTTP address as the bot reaches it, for the printed URLs",
    )
    listing = _action(actions, "list", "tokens by bot (ids, never the tokens)")
    listing.add_argument("--json", action="store_true", help="print the listing as JSON")
    revoke = _action(actions, "revoke", "revoke a token by id, or every token of a bot")
    revoke.add_argument("what", metavar="ID|BOT", help="a token id (from list) or a bot's name")
    for sub in (add, listing, revoke):
        _redis_options(sub)
    push.set_defaults(handler=cmd_push)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: parses `argv` and runs the subcommand's handler."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
