"""`pingpong-relay serve`: checks the settings and runs the relay (or the workers' supervisor).

It sizes the client capacity to the open-file limit first, and runs until SIGTERM or
SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pingpong_relay.app.alerting import check_channels
from pingpong_relay.app.auth_setup import token_verifier
from pingpong_relay.app.commands import EXIT_FAILURE, EXIT_OK, run_async
from pingpong_relay.app.rules_setup import rules_from_settings
from pingpong_relay.app.sd_notify import SystemdNotifier
from pingpong_relay.app.tls import tls_context
from pingpong_relay.app.usage import print_usage_error
from pingpong_relay.logs import setup_logging
from pingpong_relay.rules import Rule
from pingpong_relay.settings import Settings
from pingpong_relay.settings_flags import current_environ, settings_from_args

if TYPE_CHECKING:
    from pingpong_relay.cluster.siblings import Worker

__all__ = ["FD_HEADROOM", "cmd_serve", "fd_headroom", "run_relay"]

log = logging.getLogger("pingpong_relay.cli")

# Descriptors a relay needs besides its clients: listeners, Redis connections (subscription,
# history, lease, pool growth), log files, webhook and JWKS fetches, the packages it reads.
FD_HEADROOM = 200


def fd_headroom(settings: Settings) -> int:
    """Descriptors kept from WebSocket clients: the relay's own, and the HTTP plane's
    connections (--max-http-connections, plus the few past it that linger for their 503)."""
    if not settings.http_port:
        return FD_HEADROOM
    # Lazy: the HTTP plane pulls in aiohttp, which a relay without one never needs.
    from pingpong_relay.http.server import REFUSAL_SLOTS

    return FD_HEADROOM + settings.max_http_connections + REFUSAL_SLOTS


def _client_capacity(settings: Settings) -> Settings:
    """Raises the open-file limit to its hard limit (every client is a descriptor), and
    caps --max-connections below it: past it the relay could not even answer 503."""
    try:
        import resource  # optional: Unix only
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


async def _serve(
    settings: Settings,
    rules: Sequence[Rule],
    worker: Worker | None = None,
    systemd: SystemdNotifier | None = None,
) -> int:
    # Lazy: the relay pulls in picows, aiohttp and redis; `--help` and the other
    # subcommands should not pay for loading them.
    from pingpong_relay.app.relay import Relay

    settings = _client_capacity(settings)
    relay = Relay(settings, rules=rules, worker=worker, systemd=systemd)
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
    if worker is not None:
        worker.mark_ready()
    await stop.wait()
    try:
        await asyncio.wait_for(relay.stop(), settings.shutdown_timeout + 1.5)
    except TimeoutError:
        log.error("shutdown took too long; exiting anyway")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    """Runs `serve`: a usage error (exit 2) for bad settings, else the relay until a signal."""
    try:
        settings = settings_from_args(args, current_environ())
        rules = rules_from_settings(settings)
        token_verifier(settings)
        tls_context(settings)
        check_channels(settings)
    except ValueError as exc:
        return print_usage_error("pingpong-relay serve", str(exc))
    stop_logging = setup_logging(settings.log_level, settings.log_format, background=True)
    # Taken out of the environment before any child process starts (the embedded
    # redis-server, the workers): only this, the main process, speaks to systemd.
    systemd = SystemdNotifier.from_environ(os.environ, os.getpid(), settings.stats_interval)
    try:
        if settings.workers > 1:
            # Lazy: only `--workers N` needs the supervisor (and the redis it imports).
            from pingpong_relay.cluster.supervisor import supervise

            return run_async(supervise(settings, run_relay, systemd))
        return run_async(_serve(settings, rules, systemd=systemd))
    finally:
        if systemd is not None:
            systemd.close()
        stop_logging()


def run_relay(settings: Settings, worker: Worker) -> int:
    """One worker of `serve --workers N` (its process was started by the supervisor)."""
    return run_async(_serve(settings, rules_from_settings(settings), worker))
