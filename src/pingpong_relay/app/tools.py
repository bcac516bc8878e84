"""The client-side subcommands: `watch` a relay as a client does, mint a client's `token`.

The bot-side ones, `publish` and `simulate`, are in `app/bots.py`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any, Final

from pingpong_relay.app.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, run_async
from pingpong_relay.auth import mint
from pingpong_relay.backoff import Backoff
from pingpong_relay.logs import setup_logging
from pingpong_relay.settings_flags import current_environ
from pingpong_relay.wire_types import ENVELOPE_TYPE

__all__ = ["WATCH_BACKOFF", "cmd_token", "cmd_watch"]


# --- watch ---------------------------------------------------------------------------
# From 0.5-1 s doubling to 10-20 s: quick while a relay restarts, gentle while it is down.
WATCH_BACKOFF: Final = Backoff(base_s=1.0, cap_s=20.0)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def _watch(args: argparse.Namespace, token: str | None) -> int:
    # Lazy: aiohttp is loaded only by the subcommand that connects as a client.
    from pingpong_relay.client import (
        Disconnected,
        HandshakeRefused,
        Refused,
        received_envelopes,
    )

    reached = False

    def report(event: Disconnected) -> None:
        nonlocal reached
        reached = reached or event.connected
        if event.connected:
            what = f"watch: connection to {event.url} lost ({event.reason})"
        else:
            what = f"watch: cannot reach {event.url}: {event.reason}"
        _say(what if event.retry_in_s is None else f"{what}; retrying in {event.retry_in_s:.1f} s")

    try:
        received = received_envelopes(
            args.url,
            reconnect=not args.once,
            resume=False,  # the design's four-key envelope, at once
            backoff=WATCH_BACKOFF,
            token=token,
            on_disconnect=report,
        )
        count = 0
        async for text, envelope in received:
            reached = True
            _print_envelope(args, text, envelope)
            count += 1
            if args.count and count >= args.count:
                break
    except Refused as refused:
        what = "refused" if isinstance(refused, HandshakeRefused) else "closed"
        _say(f"watch: the relay {what} the connection: {refused}")
        return EXIT_FAILURE
    # --once ends with its one connection; having never made it is a failure.
    return EXIT_OK if reached else EXIT_FAILURE


def _print_envelope(args: argparse.Namespace, text: str, envelope: dict[str, Any]) -> None:
    from pingpong_relay.client import Heartbeat, describe, one_line_json  # lazy: aiohttp

    if args.json:
        # As received, not encoded again: that could fail where reading did not.
        print(one_line_json(text), flush=True)
    elif args.delays and envelope.get("type") == ENVELOPE_TYPE:
        beat = Heartbeat(envelope, time.time_ns() / 1e6)
        print(
            f"{describe(envelope)} | bot→relay {_ms(beat.bot_to_relay_ms)}, "
            f"relay→client {_ms(beat.relay_to_client_ms)}",
            flush=True,
        )
    else:
        print(describe(envelope), flush=True)


def _ms(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.1f} ms"


def cmd_watch(args: argparse.Namespace) -> int:
    """Runs `watch`: prints what a relay broadcasts until --count or Ctrl-C; exit 1 when
    the relay refuses it, or with --once when it cannot connect."""
    setup_logging(args.log_level, "text")
    token = args.token or current_environ().get("PINGPONG_TOKEN") or None
    with contextlib.suppress(KeyboardInterrupt):
        return run_async(_watch(args, token))
    return EXIT_OK


# --- token ---------------------------------------------------------------------------
def cmd_token(args: argparse.Namespace) -> int:
    """Runs `token`: prints a JWT signed with the relay's HMAC secret."""
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
