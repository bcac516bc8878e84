"""The `mute` subcommand: add, list and expire mutes in the relay's Redis directly.

It needs only what `publish` needs (the Redis the relays use, --redis-url), so it works
with every relay stopped, with auth on or off; every relay on that Redis honours the
mute within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from pingpong_relay.app.commands import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, run_async
from pingpong_relay.logs import setup_logging
from pingpong_relay.mutes import Mute, MuteError, mute_from_body, split_mutes
from pingpong_relay.urls import redact_url

__all__ = ["cmd_mute"]

_DEADLINE_S: Final = 8.0


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _line(mute: Mute, now_s: float) -> str:
    rules = ",".join(mute.rules) or "every rule"
    left = f"ends in {max(0, round(mute.ends_at_s - now_s))} s"
    if mute.starts_at_s > now_s:
        left = f"starts in {round(mute.starts_at_s - now_s)} s, " + left
    comment = f"  # {mute.comment}" if mute.comment else ""
    span = f"{_when(mute.starts_at_s)} → {_when(mute.ends_at_s)}"
    return f"{mute.id}  {' '.join(mute.bots)}  [{rules}]  {span} ({left}){comment}"


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"bots": args.patterns, "comment": args.message or ""}
    if args.rule:
        body["rules"] = args.rule
    if args.duration is not None:
        body["duration"] = args.duration
    if args.starts_at is not None:
        body["starts_at"] = args.starts_at
    if args.ends_at is not None:
        body["ends_at"] = args.ends_at
    return body


async def _run(args: argparse.Namespace) -> int:
    # Lazy: redis is loaded only by the subcommands that talk to it.
    from redis.exceptions import RedisError

    from pingpong_relay.redis_io.mutes import MuteStore

    store = MuteStore(args.redis_url)
    now_s = time.time()
    try:
        async with asyncio.timeout(_DEADLINE_S):
            if args.action == "add":
                mute = mute_from_body(
                    _body(args), mute_id=secrets.token_hex(8), now_s=now_s, created_by="cli"
                )
                await store.add(mute)
                print(mute.id)
            elif args.action == "expire":
                if not await store.expire(args.id):
                    print(
                        f"mute expire: no mute {args.id!r} is in force or scheduled",
                        file=sys.stderr,
                    )
                    return EXIT_FAILURE
                print(f"expired {args.id}")
            else:
                active, scheduled = split_mutes(await store.load(), now_s)
                if args.json:
                    listing = {"active": active, "scheduled": scheduled}
                    print(
                        orjson.dumps(
                            {k: [m.to_json() for m in v] for k, v in listing.items()}
                        ).decode()
                    )
                else:
                    for title, mutes in (("active", active), ("scheduled", scheduled)):
                        print(f"{title}: {len(mutes)}")
                        for mute in mutes:
                            print("  " + _line(mute, now_s))
    except MuteError as exc:
        print(f"pingpong-relay mute add: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RedisError, OSError, TimeoutError) as exc:
        reason = str(exc) or f"no answer in {_DEADLINE_S:g} s"
        print(
            f"mute {args.action}: cannot reach Redis at {redact_url(args.redis_url)}: {reason}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    finally:
        await store.stop()
    return EXIT_OK


def cmd_mute(args: argparse.Namespace) -> int:
    """Runs `mute add|list|expire` against the Redis at --redis-url."""
    setup_logging(args.log_level, "text")
    return run_async(_run(args))
