"""The wiring: builds one relay's components, connects them, and owns their lifecycle.

Starting registers each component's stop on one `AsyncExitStack`, so stopping is the
reverse of starting by construction and a new component is registered in one place.
One message's path: `redis_io.subscriber` → `pipeline.Pipeline.on_message` → `hub.Hub`
→ `ws.peer.ClientPeer` → the socket; then history, statistics and alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AsyncExitStack
from typing import Any

import orjson
from redis.exceptions import RedisError

from pingpong_relay.app.alerting import AlertPath
from pingpong_relay.app.announce import log_listening, warn_if_exposed
from pingpong_relay.app.auth_setup import token_verifier
from pingpong_relay.app.ingestion import Ingestion
from pingpong_relay.app.rules_setup import rules_from_settings
from pingpong_relay.app.sd_notify import SystemdNotifier
from pingpong_relay.app.seeding import seed_from_history
from pingpong_relay.app.tls import tls_context
from pingpong_relay.backoff import Backoff
from pingpong_relay.cluster.siblings import Siblings, Worker
from pingpong_relay.codes import REASON_SHUTDOWN, CloseCode
from pingpong_relay.health import RelayHealth
from pingpong_relay.http.app import build_app
from pingpong_relay.http.jwks import keep_jwks
from pingpong_relay.http.server import HttpPlane
from pingpong_relay.hub import Hub
from pingpong_relay.limits import BotAllowList
from pingpong_relay.monitor import Monitor
from pingpong_relay.notify.mutes import MuteGate
from pingpong_relay.origins import HostPolicy
from pingpong_relay.pipeline import Pipeline
from pingpong_relay.readiness import clients_text
from pingpong_relay.redis_io.embedded import EmbeddedRedis
from pingpong_relay.redis_io.history import History
from pingpong_relay.redis_io.mutes import MuteStore
from pingpong_relay.redis_io.resolve import resolve_redis_url
from pingpong_relay.redis_io.rollup_store import RollupStore
from pingpong_relay.redis_io.subscriber import RedisSource
from pingpong_relay.refusals import Refusals
from pingpong_relay.rules import Rule
from pingpong_relay.settings import Settings
from pingpong_relay.tasks import cancel_and_wait
from pingpong_relay.telemetry.metrics import RelayMetrics, http_refusal_words
from pingpong_relay.ws.dataplane import DataPlane
from pingpong_relay.ws.sessions import Sessions

__all__ = ["Relay", "open_mutes"]

log = logging.getLogger("pingpong_relay.server")


class Relay:
    """One relay process: owns every socket, task and child process it starts."""

    def __init__(
        self,
        settings: Settings,
        *,
        rules: Sequence[Rule] | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        worker: Worker | None = None,
        systemd: SystemdNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self.systemd = systemd  # when run by systemd with Type=notify (never in a worker)
        self.relay_id = f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = RelayMetrics(mqtt=bool(settings.mqtt_url))
        self.hub = Hub(
            self.metrics,
            settings.max_client_buffer,
            "close" if settings.slow_client == "close" else "conflate",
            worker.index if worker is not None else None,
        )
        self.alerting = AlertPath(settings, self.metrics)  # webhooks, channels, the lease
        self.ingestion = Ingestion(settings, self.metrics)  # push URLs, MQTT, pollers
        self.monitor = Monitor(
            self.hub,
            self.metrics,
            rules if rules is not None else rules_from_settings(settings),
            alert_sink=self.alerting.send,
            alert_repeat_s=settings.alert_repeat,
            max_bots=settings.max_bots,
            max_clock_skew_s=settings.max_clock_skew,
            forget_after_s=settings.forget_after,
            evaluation_interval_s=settings.evaluation_interval,
            stats_interval_s=settings.stats_interval,
            clock=lambda: wall_clock_ns() / 1e9,
            hearing=lambda: self.source is not None and self.source.is_alive(),
        )
        self._build_planes(settings, worker, wall_clock_ns)
        self.embedded: EmbeddedRedis | None = None
        self.source: RedisSource | None = None
        self.history: History | None = None
        self.rollups: RollupStore | None = None
        self.http: HttpPlane | None = None
        self.mutes: MuteStore | None = None
        self._stack = AsyncExitStack()

    def _build_planes(
        self, settings: Settings, worker: Worker | None, wall_clock_ns: Callable[[], int]
    ) -> None:
        """What stands between Redis and the sockets: health, the pipeline, the sessions
        and the data plane; the Redis-backed parts are made when starting."""
        self.health = RelayHealth(
            self.hub,
            relay_id=self.relay_id,
            channels=settings.channel,
            worker=worker.index if worker is not None else None,
            wall_clock_ns=wall_clock_ns,
        )
        self.pipeline = Pipeline(
            self.hub,
            self.metrics,
            self.monitor.observe,
            max_message_bytes=settings.max_message_bytes,
            accept_bots=BotAllowList(settings.accept_bots),
            max_bot_rate=settings.max_bot_rate,
            wall_clock_ns=wall_clock_ns,
            stage_level=logging.INFO if settings.log_stages else logging.DEBUG,
        )
        self.verifier = token_verifier(settings)
        self.sessions = Sessions(
            self.hub,
            self.metrics,
            self.monitor,
            self.health.state_message,
            verifier=self.verifier,
            wall_clock_ns=wall_clock_ns,
        )
        # Who the relay is, for Host and Origin checks on both planes: its own addresses
        # and the names the operator gave, never what a request claims.
        self.hosts = HostPolicy.build(
            settings.allowed_host,
            settings.allowed_origin,
            settings.public_ws_url,
            settings.http_port,
        )
        # Refused upgrades are counted by the authenticator (pingpong_auth_failures_total);
        # these log them with their path and address, at most once per interval per reason.
        self.token_refusals = Refusals(
            None,
            what="WebSocket upgrade",
            describe=lambda reason: f"client(s) for their token ({reason})",
            logger=logging.getLogger("pingpong_relay.dataplane"),
            event="auth_refused",
        )
        self.dataplane = DataPlane(
            self.hub,
            self.metrics,
            health=self.health.public,  # anyone can ask the data port
            http_port=settings.http_port,
            ping_interval_s=settings.ping_interval,
            ping_timeout_s=settings.ping_timeout,
            on_command=self.sessions.command,
            on_joined=self.sessions.joined,
            on_left=self.sessions.left,
            authenticate=self.sessions.authenticate,
            hosts=self.hosts,
            max_connections=settings.max_connections,
            frame_rate_per_s=settings.client_frame_rate,
            max_per_ip=settings.max_connections_per_ip,
            connection_rate_per_ip=settings.connection_rate_per_ip,
            refused=self.token_refusals,
        )
        self.siblings = Siblings(worker, self.metrics.render, self.health.health)

    # --- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        """Starts every component; if one fails, those already started are stopped."""
        try:
            await self._start(self._stack)
        except BaseException:
            await self._stack.aclose()
            raise

    async def stop(self) -> None:
        """Stop accepting, close every client with 1001, stop every component in the
        reverse order of starting, and wait (up to --shutdown-timeout) for clients."""
        log.info(
            "shutting down: closing %d clients",
            len(self.hub),
            extra={"event": "shutdown", "clients": len(self.hub)},
        )
        await self._stack.aclose()
        log.info("relay stopped", extra={"event": "stopped"})

    async def _start(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        warn_if_exposed(settings)
        if self.systemd is not None:  # pings from the start on, until the very end
            self._task(stack, self.systemd.keep_watchdog(), "systemd-watchdog")
        redis_url, self.embedded = await resolve_redis_url(settings)
        if self.embedded is not None:
            stack.callback(self.embedded.stop)
        self.source = RedisSource(
            redis_url,
            settings.channel,
            self.pipeline.on_message,
            self.metrics,
            health_interval_s=settings.redis_health_interval,
            backoff=Backoff(cap_s=settings.reconnect_max_delay),
            patterns=settings.channel_pattern,
            on_deaf=self.health.deaf,
        )
        self.health.source = self.source
        if settings.history_retention > 0:
            self._open_history(stack, redis_url)
        self.mutes, gate = await open_mutes(stack, redis_url, self.monitor)
        await self.ingestion.start(stack, redis_url, self.relay_id)
        self.health.mqtt = self.ingestion.mqtt
        self.health.pollers = self.ingestion.pollers
        tls = tls_context(settings)
        reuse_port = self.worker is not None
        await self.siblings.start()
        stack.push_async_callback(self.siblings.stop)
        if settings.http_port:
            await self._start_http(stack, tls, reuse_port)
        await self.dataplane.start(settings.host, settings.port, tls, reuse_port=reuse_port)
        stack.callback(self.token_refusals.close)
        # Runs after everything registered below has stopped: clients had their 1001.
        stack.push_async_callback(self._wait_clients_gone, settings.shutdown_timeout)
        self._task(stack, self.source.run(), "redis-source", before=self.source.stopping)
        self._task(stack, self.health.keep_telling(settings.stats_interval), "relay-state")
        if settings.log_summary_interval > 0:
            summaries = self.pipeline.keep_summarising(settings.log_summary_interval)
            self._task(stack, summaries, "log-summary")
        sink = await self.alerting.start(stack, redis_url, self.relay_id, settings.webhook_lease)
        self.monitor.alert_sink = gate.wrap(sink)  # mutes hold alerts back
        self.monitor.start()
        stack.push_async_callback(self.monitor.stop)
        if self.history is not None:
            seed = seed_from_history(
                self.history,
                self.monitor,
                max_bots=settings.max_bots,
                forget_after_s=settings.forget_after,
            )
            self._task(stack, seed, "seed-bots")
        if self.verifier is not None and self.verifier.jwks is not None:
            refresh = keep_jwks(self.verifier.jwks, settings.jwks_url, settings.jwks_refresh)
            self._task(stack, refresh, "jwks-refresh")
        stack.push_async_callback(self.sessions.close)
        stack.callback(self._close_clients)
        if self.systemd is not None:
            self._task(stack, self.systemd.keep_status(self._health), "systemd-status")
            stack.callback(self._stopping, self.systemd)  # the first thing stopping does
        log_listening(
            settings,
            ws_port=self.dataplane.port,
            http_port=self.http.port if self.http else 0,
            tls=tls is not None,
            source=self.source.describe(),
            redis_url=redis_url,
        )

    def _open_history(self, stack: AsyncExitStack, redis_url: str) -> None:
        settings = self.settings
        history = self.history = History(
            redis_url,
            self.metrics,
            retention_s=settings.history_retention,
            max_entries=settings.history_max_entries,
        )
        history.start()
        stack.push_async_callback(history.stop)
        self.pipeline.record = history.record
        self.sessions.history = history
        self.health.record_deaf = history.record_deaf
        self.rollups = RollupStore(history.redis)
        self.rollups.start()
        stack.push_async_callback(self.rollups.stop)

    async def _start_http(
        self, stack: AsyncExitStack, tls: ssl.SSLContext | None, reuse_port: bool
    ) -> None:
        settings = self.settings
        refusals = Refusals(self.metrics.http_refused, describe=http_refusal_words)
        stack.callback(refusals.close)
        self.http = HttpPlane(
            build_app(
                self.siblings.whole_health,
                self.siblings.whole_metrics,
                self.monitor,
                self.history,
                self.rollups,
                silence_ms=int(settings.silence_timeout * 1000),
                authenticate=self.sessions.authenticate if self.verifier is not None else None,
                metrics_token=settings.metrics_token,
                dashboard_config=lambda: self.dashboard_config(tls is not None),
                hosts=self.hosts,
                frame_ancestors=settings.frame_ancestors,
                refused=refusals,
                public_bots=tuple(settings.public_bots),
                mutes=self.mutes,
                push=self.ingestion.push_plane(),
            ),
            refused=refusals,
            max_connections=settings.max_http_connections,
            request_timeout_s=settings.http_request_timeout,
        )
        await self.http.start(settings.host, settings.http_port, tls, reuse_port=reuse_port)
        stack.push_async_callback(self.http.stop)

    @staticmethod
    def _task(
        stack: AsyncExitStack,
        coroutine: Coroutine[Any, Any, None],
        name: str,
        before: Callable[[], None] | None = None,
    ) -> None:
        """A named background task that stopping cancels (after calling `before`)."""
        task = asyncio.create_task(coroutine, name=name)

        async def stop() -> None:
            if before is not None:
                before()
            await cancel_and_wait(task)

        stack.push_async_callback(stop)

    async def _health(self) -> tuple[bool, dict[str, Any]]:
        return self.health.health()

    def _stopping(self, systemd: SystemdNotifier) -> None:
        systemd.stopping(f"shutting down: closing {clients_text(len(self.hub))}")

    def _close_clients(self) -> None:
        self.dataplane.stop_accepting()
        self.hub.close_all(CloseCode.GOING_AWAY, REASON_SHUTDOWN)

    async def _wait_clients_gone(self, timeout_s: float) -> None:
        if not await self.hub.wait_empty(timeout_s):
            for peer in self.hub.peers():
                self.hub.remove(peer, "did not finish the closing handshake in time")

    # --- what the planes ask of the wiring --------------------------------------------
    def dashboard_config(self, tls: bool) -> dict[str, Any]:
        """What the dashboard page needs to find the data plane and know what it may ask."""
        settings = self.settings
        return {
            "ws_url": settings.public_ws_url or None,
            "ws_port": self.dataplane.port,
            "ws_scheme": "wss" if tls else "ws",
            "auth": settings.auth,
            "history": self.history is not None,
            "stats_interval_s": settings.stats_interval,
            "silence_timeout_s": settings.silence_timeout,  # a chart's gap, for a new bot
            # No version: this is open to anyone, like /healthz (relay:state has it).
        }


async def open_mutes(
    stack: AsyncExitStack, redis_url: str, monitor: Monitor
) -> tuple[MuteStore, MuteGate]:
    """The mute store (read once now, so a restarted relay knows its mutes before any
    alert) and the gate that holds muted alerts back; the monitor marks muted events."""
    mutes = MuteStore(redis_url)
    gate = MuteGate(lambda: mutes.cached)
    mutes.on_refresh = gate.check
    monitor.muted = gate.muted

    def unmuted(alert: dict[str, Any]) -> None:  # clients saw it muted: now it is not
        again = orjson.dumps({**alert, "repeat": True})
        monitor.hub.broadcast(
            again, "alerts", alert["bot"], key=("alert", alert["rule"], alert["bot"])
        )

    gate.on_unmuted = unmuted
    with contextlib.suppress(RedisError, OSError):  # the refresh loop logs it
        await mutes.load()
    mutes.start()
    stack.push_async_callback(mutes.stop)
    return mutes, gate
