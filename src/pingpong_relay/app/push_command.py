"""The `push` subcommand: issue, list and revoke push tokens in the relays' Redis.

A token lets one bot push heartbeats through `/api/push/<token>` (Uptime Kuma's URL) and
`/ping/<token>` (Healthchecks'); only its SHA-256 is stored, so the URLs are printed once,
by `push add`. Every relay on that Redis accepts a new token at once and stops accepting
a revoked one within a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from pingpong_relay.app.commands import EXIT_FAILURE, EXIT_OK, run_async
from pingpong_relay.ingest import PING_PREFIX, PUSH_PREFIX
from pingpong_relay.logs import setup_logging
from pingpong_relay.urls import redact_url

__all__ = ["cmd_push", "push_urls"]

_DEADLINE_S: Final = 8.0


def push_urls(base_url: str, token: str) -> tuple[str, str]:
    """The push URL (Uptime Kuma's, ready to append a message and a ping) and the ping URL
    (Healthchecks') of `token` at the relay's HTTP address `base_url`."""
    base = base_url.rstrip("/")
    return f"{base}{PUSH_PREFIX}{token}?status=up&msg=OK&ping=", f"{base}{PING_PREFIX}{token}"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _print_entries(entries: list[dict[str, Any]], channel: str) -> None:
    for entry in entries:
        print(f"{entry['id']}  {channel}/{entry['bot']}  created {_when(entry['created_ms'])}")


async def _run(args: argparse.Namespace) -> int:
    # Lazy: redis is loaded only by the subcommands that talk to it.
    from redis.exceptions import RedisError

    from pingpong_relay.redis_io.clients import redis_client
    from pingpong_relay.redis_io.push_tokens import CACHE_S, PushTokens

    redis = redis_client(args.redis_url, socket_connect_timeout=5, socket_timeout=5)
    tokens = PushTokens(redis)
    try:
        async with asyncio.timeout(_DEADLINE_S):
            if args.action == "add":
                token, token_id = await tokens.add(args.bot)
                push_url, ping_url = push_urls(args.url, token)
                print(f"token {token_id} for bot {args.channel}/{args.bot}; shown only now:")
                print(f"  push URL (Uptime Kuma style):  {push_url}")
                print(f"  ping URL (Healthchecks style): {ping_url}")
            elif args.action == "revoke":
                revoked = await tokens.revoke(args.what)
                if not revoked:
                    print(f"push revoke: no token has id or bot {args.what!r}", file=sys.stderr)
                    return EXIT_FAILURE
                print(f"revoked {len(revoked)} token(s); relays refuse them within {CACHE_S:g} s:")
                _print_entries(revoked, args.channel)
            else:
                entries = await tokens.entries()
                if args.json:
                    print(orjson.dumps(entries).decode())
                else:
                    print(f"push tokens: {len(entries)}")
                    _print_entries(entries, args.channel)
    except (RedisError, OSError, TimeoutError) as exc:
        reason = str(exc) or f"no answer in {_DEADLINE_S:g} s"
        where = redact_url(args.redis_url)
        print(f"push {args.action}: cannot reach Redis at {where}: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        await redis.aclose()
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    """Runs `push add|list|revoke` against the Redis at --redis-url."""
    setup_logging(args.log_level, "text")
    return run_async(_run(args))
