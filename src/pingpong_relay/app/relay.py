"""Wiring: Redis source → validate → hub broadcast, plus the HTTP plane and graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from redis.exceptions import RedisError

from pingpong_relay import __version__
from pingpong_relay.alerts import Rule
from pingpong_relay.auth import (
    AuthError,
    Grant,
    JwksKeys,
    TokenVerifier,
    extract_token,
    offered_subprotocol,
    redact_query,
)
from pingpong_relay.backoff import Backoff
from pingpong_relay.cluster.supervisor import Worker, gather_health, gather_metrics
from pingpong_relay.codes import REASON_SHUTDOWN, REASON_TOKEN_EXPIRED, CloseCode
from pingpong_relay.http.app import HttpPlane, Refusals, build_app
from pingpong_relay.http.guard import public_health
from pingpong_relay.hub import Hub, Peer
from pingpong_relay.limits import BotAllowList, BotRateLimiter, LogThrottle
from pingpong_relay.messages import (
    RejectedMessage,
    check_channel,
    encode_envelope,
    encode_tagged_envelope,
    excerpt,
    format_bot_time,
    format_latency,
    parse_bot_message,
)
from pingpong_relay.monitor import Monitor, rules_from_settings
from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.origins import HostPolicy, is_loopback
from pingpong_relay.redis_io.embedded import EmbeddedRedis
from pingpong_relay.redis_io.history import Entry, History
from pingpong_relay.redis_io.lease import WebhookLease, open_alerts
from pingpong_relay.redis_io.resolve import resolve_redis_url
from pingpong_relay.redis_io.rollup_store import RollupStore
from pingpong_relay.redis_io.subscriber import RedisSource
from pingpong_relay.settings import Settings
from pingpong_relay.subscriptions import (
    MAX_REPLAY,
    RECORDED,
    CommandError,
    ReplayRequest,
    Subscription,
    apply,
    bot_id,
    parse_command,
    position_key,
)
from pingpong_relay.tasks import cancel_and_wait
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.urls import redact_url
from pingpong_relay.ws.dataplane import DataPlane

log = logging.getLogger("pingpong_relay.server")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server TLS context --tls-cert/--tls-key ask for; ValueError naming the flag."""
    if not settings.tls_cert and not settings.tls_key:
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise ValueError("--tls-cert and --tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"--tls-cert/--tls-key: {exc}") from None
    return context


def token_verifier(settings: Settings) -> TokenVerifier | None:
    """The verifier --auth jwt asks for; ValueError naming the flag when it is misconfigured."""
    if settings.auth != "jwt":
        return None
    if sum(map(bool, (settings.jwt_secret, settings.jwt_public_key, settings.jwks_url))) != 1:
        raise ValueError(
            "--auth jwt needs exactly one of --jwt-secret, --jwt-public-key and --jwks-url"
        )
    if settings.jwt_secret and len(settings.jwt_secret) < 32:
        raise ValueError("--jwt-secret must be at least 32 characters")
    public_key = None
    if settings.jwt_public_key:
        try:
            public_key = Path(settings.jwt_public_key).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(
                f"--jwt-public-key {settings.jwt_public_key}: {exc.strerror}"
            ) from None
    return TokenVerifier(
        secret=settings.jwt_secret or None,
        public_key=public_key,
        jwks=JwksKeys() if settings.jwks_url else None,
        audience=settings.jwt_audience or None,
        issuer=settings.jwt_issuer or None,
    )


BOT_DROP_LOG_INTERVAL_S = 10.0
JWKS_TIMEOUT_S = 5.0
JWKS_MIN_INTERVAL_S = 2.0


class Relay:
    """One relay process: owns every socket, task and child process it starts."""

    def __init__(
        self,
        settings: Settings,
        *,
        rules: Sequence[Rule] | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
        worker: Worker | None = None,
    ) -> None:
        self.settings = settings
        self.worker = worker
        self._private: web.AppRunner | None = None
        self.lease: WebhookLease | None = None
        self.metrics = RelayMetrics()
        self.hub = Hub(
            self.metrics,
            settings.max_client_buffer,
            "close" if settings.slow_client == "close" else "conflate",
            worker.index if worker is not None else None,
        )
        self.webhooks = WebhookSender(settings.webhook_url, self.metrics)
        self.monitor = Monitor(
            self.hub,
            self.metrics,
            rules if rules is not None else rules_from_settings(settings),
            alert_sink=self.webhooks.submit,
            alert_repeat_s=settings.alert_repeat,
            max_bots=settings.max_bots,
            forget_after_s=settings.forget_after,
            evaluation_interval_s=settings.evaluation_interval,
            stats_interval_s=settings.stats_interval,
            clock=lambda: wall_clock_ns() / 1e9,
            hearing=lambda: self.source is not None and self.source.is_alive(),
        )
        self._wall_clock_ns = wall_clock_ns
        self._started_at = time.monotonic()
        self.embedded: EmbeddedRedis | None = None
        self.source: RedisSource | None = None
        # Who the relay is, for Host and Origin checks on both planes: its own addresses
        # and the names the operator gave, never what a request claims.
        self.hosts = HostPolicy.build(
            settings.allowed_host,
            settings.allowed_origin,
            settings.public_ws_url,
            settings.http_port,
        )
        self.dataplane = DataPlane(
            self.hub,
            self.metrics,
            health=self.public_health,  # anyone can ask the data port
            http_port=settings.http_port,
            ping_interval_s=settings.ping_interval,
            ping_timeout_s=settings.ping_timeout,
            on_command=self.handle_command,
            on_joined=self.client_joined,
            authenticate=self.authenticate,
            hosts=self.hosts,
            max_connections=settings.max_connections,
            frame_rate_per_s=settings.client_frame_rate,
            max_per_ip=settings.max_connections_per_ip,
            connection_rate_per_ip=settings.connection_rate_per_ip,
        )
        self.http: HttpPlane | None = None
        self._http_refusals: Refusals | None = None
        self.history: History | None = None
        self._replays: set[asyncio.Task[None]] = set()
        self.rollups: RollupStore | None = None
        self.relay_id = f"{socket.gethostname()}:{os.getpid()}"
        self.verifier = token_verifier(settings)
        self._expiries: dict[str, asyncio.TimerHandle] = {}
        self._jwks_task: asyncio.Task[None] | None = None
        self._bot_limiter = BotRateLimiter(settings.max_bot_rate)
        self._drop_logged_at: dict[str, float] = {}
        self._accepted_bots = BotAllowList(settings.accept_bots)
        self._not_accepted_log = LogThrottle(BOT_DROP_LOG_INTERVAL_S)
        self._source_task: asyncio.Task[None] | None = None
        self._state_task: asyncio.Task[None] | None = None
        self._seed_task: asyncio.Task[None] | None = None
        self._log_info = log.isEnabledFor(logging.INFO)

    # --- the hot path: one Redis message → every client -----------------------------
    def on_redis_message(self, channel: str, raw: bytes) -> None:
        try:
            self._relay(channel, raw)
        except Exception:
            # A bug in handling one message must not end the subscription for all the
            # ones after it: log it with its payload, count it, carry on.
            self.metrics.message_errors.inc()
            shown = excerpt(raw)
            log.exception(
                "internal error handling a message on %s; payload: %s",
                channel,
                shown,
                extra={"event": "message_error", "channel": channel, "excerpt": shown},
            )

    def _relay(self, channel: str, raw: bytes) -> None:
        received = time.perf_counter()
        metrics = self.metrics
        metrics.messages_received.inc()
        try:
            check_channel(channel, raw)
            message = parse_bot_message(raw, self.settings.max_message_bytes)
        except RejectedMessage as rejected:
            metrics.messages_rejected.labels(rejected.reason).inc()
            shown = rejected.excerpt
            if rejected.reason == "bad_channel":
                channel = excerpt(channel.encode("utf-8", "surrogatepass"))
            log.warning(
                "rejected message on %s: %s; payload: %s",
                channel,
                rejected,
                shown,
                extra={
                    "event": "rejected",
                    "channel": channel,
                    "reason": rejected.reason,
                    "detail": rejected.detail,
                    "excerpt": shown,
                    "size_bytes": len(raw),
                },
            )
            return
        now_ns = self._wall_clock_ns()
        now_s, relay_ms = now_ns / 1e9, now_ns // 1_000_000
        bot = bot_id(channel, message.source)
        if not self._accepted_bots.accepts(bot):
            self._not_accepted(bot, now_s)
            return
        if not self._bot_limiter.allow(bot, now_s):
            self._dropped_over_rate(bot, now_s)
            return
        envelope = encode_envelope(message, relay_ms)
        # Matched once, counted for the log line and written to from the same snapshot.
        targets = self.hub.targets("pingpong", bot, message.type)
        done = None
        if self._log_info:
            clients = sum(len(group.members) for group in targets)
            bot_time = format_bot_time(message.timestamp_ms)
            log.info(
                "received %s from bot on %s: latency %s, bot time %s",
                message.type.upper(),
                channel,
                format_latency(message.latency_ms),
                bot_time,
                extra={
                    "event": "received",
                    "channel": channel,
                    "type": message.type,
                    "latency_ms": message.latency_ms,
                    "bot_timestamp_ms": message.timestamp_ms,
                    "bot_time": bot_time,
                    "source": message.source,
                    "bot": bot,
                },
            )
            log.info(
                "broadcasting to %d clients",
                clients,
                extra={"event": "broadcasting", "clients": clients},
            )
            done = partial(self._broadcast_done, clients)
        self.hub.deliver(envelope, targets, ("pingpong", bot, message.type), received, done)
        # After the writes: history, statistics and alerts must not delay the heartbeat.
        if self.history is not None:
            self.history.record(
                bot,
                channel,
                message.raw,
                relay_ms,
                partial(self._recorded, bot, message.type, message.raw, relay_ms),
            )
        else:
            self._recorded(bot, message.type, message.raw, relay_ms, None)
        self.monitor.observe(bot, message, now_s)
        metrics.messages_forwarded.inc()

    @staticmethod
    def _broadcast_done(clients: int) -> None:
        # Logged once the envelope was written (on the loop turn after it was queued),
        # so the design's stages keep their order: received, broadcasting, sent, done.
        log.info(
            "broadcast done: to %d clients",
            clients,
            extra={"event": "broadcast_done", "delivered": clients},
        )

    def _not_accepted(self, bot: str, now_s: float) -> None:
        """A bot --accept-bots does not name: counted; logged at most once per 10 s."""
        self.metrics.messages_rejected.labels("bot_not_accepted").inc()
        count = self._not_accepted_log.note("bot_not_accepted", now_s)
        if not count:
            return
        log.warning(
            "%d message(s) from bots that --accept-bots does not name (e.g. %s) were not "
            "relayed, recorded or tracked",
            count,
            bot,
            extra={"event": "bot_not_accepted", "bot": bot, "messages": count},
        )

    def _dropped_over_rate(self, bot: str, now_s: float) -> None:
        self.metrics.bot_messages_dropped.inc()
        if now_s - self._drop_logged_at.get(bot, 0.0) < BOT_DROP_LOG_INTERVAL_S:
            return
        self._drop_logged_at[bot] = now_s
        dropped = self._bot_limiter.take_dropped().get(bot, 0)
        log.warning(
            "bot %s is over --max-bot-rate %g/s: %d message(s) dropped",
            bot,
            self.settings.max_bot_rate,
            dropped,
            extra={"event": "bot_rate_limited", "bot": bot, "dropped": dropped},
        )

    # --- clients' own requests ------------------------------------------------------
    def handle_command(self, peer: Peer, raw: bytes) -> None:
        """Answers one command frame: an ack, the listing, or an error; never silence."""
        request_id: str | float | None = None
        before = subscription = peer.subscription
        try:
            command = parse_command(raw)
            request_id = command.request_id
            if command.action == "refresh":
                reply: dict[str, Any] = self._refresh(peer, command.token)
                subscription = peer.subscription
            elif command.action == "list":
                reply = {
                    "type": "subscriptions",
                    "subscription": peer.subscription.to_json(),
                    # Every bot the token may see, not only those subscribed to now.
                    "bots": [b for b in self.known_bots() if peer.subscription.in_scope(b)],
                }
            else:
                subscription = apply(before, command)
                self.hub.resubscribe(peer, subscription)
                reply = {
                    "type": "ack",
                    "action": command.action,
                    "subscription": subscription.to_json(),
                }
        except CommandError as refused:
            self.metrics.client_frames_refused.inc()
            log.warning(
                "refused command from %s: %s: %s; frame: %s",
                peer.client_id,
                refused.code,
                refused.message,
                excerpt(raw),
                extra={
                    "event": "command_refused",
                    "client": peer.client_id,
                    "error": refused.code,
                    "detail": refused.message,
                    "excerpt": excerpt(raw),
                },
            )
            reply = {"type": "error", "error": refused.code, "message": refused.message}
        if request_id is not None:
            reply["id"] = request_id
        self.hub.send_to(peer, orjson.dumps(reply))
        if subscription.wants("status") and not before.wants("status"):
            self.send_current_status(peer)
        if subscription.wants("relay") and not before.wants("relay"):
            self.hub.send_to(peer, self.relay_state())

    def _recorded(
        self, bot: str, kind: str, raw: bytes, relay_ms: int, entry_id: str | None
    ) -> None:
        """Once a message has its history id (None: history is off), the tagged envelope
        to clients that asked for ids."""
        targets = self.hub.targets(RECORDED, bot, kind)
        if not targets and not self.hub.holding:
            return
        payload = encode_tagged_envelope(raw, relay_ms, bot, entry_id)
        if entry_id is not None:
            self.hub.hold_recorded(payload, bot, kind, entry_id)
        self.hub.deliver(payload, targets, ("pingpong", bot, kind))

    def authenticate(
        self, headers: Mapping[str, str], query: str
    ) -> tuple[Grant | None, str | None]:
        """Checks a client's token before the upgrade; raises AuthError to refuse it."""
        if self.verifier is None:
            return None, offered_subprotocol(headers)
        try:
            presented = extract_token(headers, query)
            grant = self.verifier.verify(presented.token, self._wall_clock_ns() / 1e9)
        except AuthError as refused:
            self.metrics.auth_failures.labels(refused.reason).inc()
            # The query string is shown with any token replaced: never the token itself.
            shown = redact_query("/?" + query) if query else "/"
            log.warning(
                "refused a client: %s (%s) for %s",
                refused.reason,
                refused.message,
                shown,
                extra={"event": "auth_refused", "reason": refused.reason, "path": shown},
            )
            raise
        return grant, presented.echo_subprotocol

    async def _keep_jwks(self, keys: JwksKeys) -> None:
        """Fetches the JWKS now, every --jwks-refresh, and when a token names an unknown key."""
        wanted = asyncio.Event()
        keys.refresh_requested = wanted.set
        url = self.settings.jwks_url
        timeout = aiohttp.ClientTimeout(total=JWKS_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                wanted.clear()  # a request from here on leads to the next fetch
                try:
                    async with session.get(url) as response:
                        response.raise_for_status()
                        count = keys.load(await response.json(content_type=None))
                    log.info(
                        "loaded %d key(s) from the JWKS at %s",
                        count,
                        url,
                        extra={"event": "jwks_loaded", "keys": count},
                    )
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning(
                        "could not load the JWKS from %s: %s",
                        url,
                        exc,
                        extra={"event": "jwks_failed", "error": str(exc)},
                    )
                # At most one fetch per JWKS_MIN_INTERVAL_S, however many tokens ask.
                await asyncio.sleep(JWKS_MIN_INTERVAL_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        wanted.wait(), max(0.0, self.settings.jwks_refresh - JWKS_MIN_INTERVAL_S)
                    )

    async def _seed_from_history(self) -> None:
        """Established bots the history heard within --forget-after, with their last
        message: a relay that (re)starts while a bot is silent still judges it silent,
        instead of not knowing it at all. At most --max-bots, the most recently heard first,
        read in two round trips whatever the number of bots in the history; bots on
        probation there (a flood of made-up ids) and bots gone for longer are left out.
        A silence alert that was already notified (the webhook lease notes each one sent)
        goes on from where it was instead of being notified again."""
        assert self.history is not None
        settings = self.settings
        started = time.perf_counter()
        silence_rules = [rule.name for rule in self.monitor.engine.rules if rule.kind == "silence"]
        try:
            known = await self.history.recent_established(
                settings.max_bots, settings.forget_after or None
            )
            notified = await open_alerts(
                self.history.redis, silence_rules, [bot for bot, _ in known]
            )
        except (RedisError, OSError, orjson.JSONDecodeError) as exc:
            log.warning("could not read the known bots from the history: %s", exc)
            return
        seeded = 0
        for bot, last_seen_s in known:
            if self.monitor.seed(bot, last_seen_s, notified.get(bot, ())):
                seeded += 1
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

    def relay_deaf(self, since_s: float, until_s: float | None) -> None:
        """Tells status watchers (and the history) when this relay could not hear Redis."""
        body: dict[str, Any] = {
            "type": "relay:deaf",
            "relay": self.relay_id,
            "from_ms": int(since_s * 1000),
            "to_ms": int(until_s * 1000) if until_s is not None else None,
        }
        if until_s is not None:
            body["duration_s"] = round(until_s - since_s, 3)
            if self.history is not None:
                self.history.record_deaf(body["from_ms"], body["to_ms"], self.relay_id)
        self.hub.broadcast(orjson.dumps(body), "status", key=("relay:deaf",))
        self.hub.broadcast(self.relay_state(), "relay", key=("relay:state",))

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
            # No version: this is open to anyone, like /healthz (relay:state has it).
        }

    def relay_state(self) -> bytes:
        """This relay's own health as a message: what /healthz?detail=1 says, for `relay`
        watchers, but with a generic reason (the error text names Redis's address; it is in
        the log)."""
        _, health = self.health(error_text=False)
        return orjson.dumps(
            {
                "type": "relay:state",
                "relay": self.relay_id,
                "at_ms": self._wall_clock_ns() // 1_000_000,
                **health,
            }
        )

    async def _keep_relay_state(self) -> None:
        """Every --stats-interval, the relay's state to whoever watches it (clients come and go)."""
        while True:
            await asyncio.sleep(self.settings.stats_interval)
            targets = self.hub.targets("relay")
            if targets:
                self.hub.deliver(self.relay_state(), targets, ("relay:state",))

    def _refresh(self, peer: Peer, token: str | None) -> dict[str, Any]:
        """A new token in-band, before the old one expires: same subject, new scope/expiry."""
        if self.verifier is None:
            raise CommandError("auth_off", "this relay does not use tokens")
        current: Grant | None = getattr(peer, "grant", None)
        try:
            grant = self.verifier.verify(token, self._wall_clock_ns() / 1e9)
        except AuthError as refused:
            self.metrics.auth_failures.labels(refused.reason).inc()
            raise CommandError(refused.reason, refused.message) from None
        if current is not None and grant.subject != current.subject:
            raise CommandError("bad_token", "the new token is for another subject")
        setattr(peer, "grant", grant)  # noqa: B010 - the data plane's peer carries it
        self.hub.resubscribe(
            peer, replace(peer.subscription, scope_bots=grant.bots, scope_events=grant.events)
        )
        self._schedule_expiry(peer, grant)
        return {
            "type": "ack",
            "action": "refresh",
            "expires_at_ms": int(grant.expires_at_s * 1000) if grant.expires_at_s else None,
        }

    def _schedule_expiry(self, peer: Peer, grant: Grant) -> None:
        """A token that expires while connected ends the connection at that moment."""
        previous = self._expiries.pop(peer.client_id, None)
        if previous is not None:
            previous.cancel()
        if grant.expires_at_s is None:
            return
        delay_s = max(0.0, grant.expires_at_s - self._wall_clock_ns() / 1e9)

        def expire() -> None:
            self._expiries.pop(peer.client_id, None)
            peer.close(CloseCode.TOKEN_EXPIRED, REASON_TOKEN_EXPIRED)

        self._expiries[peer.client_id] = asyncio.get_running_loop().call_later(delay_s, expire)

    def client_joined(self, peer: Peer) -> None:
        grant: Grant | None = getattr(peer, "grant", None)
        if grant is not None:
            self._schedule_expiry(peer, grant)
        # wants(), not the events asked for: the token's events scope applies here too.
        if peer.subscription.wants("status"):
            self.send_current_status(peer)
        if peer.subscription.wants("relay"):
            self.hub.send_to(peer, self.relay_state())
        replay = getattr(peer, "replay", None)
        if replay is not None:
            held = self.hub.hold(peer)
            task = asyncio.create_task(
                self._replay(peer, replay, held), name=f"replay-{peer.client_id}"
            )
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    async def _replay(
        self, peer: Peer, request: ReplayRequest, held: list[tuple[str, str, bytes]]
    ) -> None:
        """History first, then what arrived meanwhile, without a duplicate at the seam.

        The peer was held (and so started collecting recorded messages) before the
        first read, so anything recorded after that read is in `held`; anything in both
        is recognised by its id and sent once.
        """
        sent_up_to: dict[str, tuple[int, int]] = {}
        try:
            if self.history is None:
                raise CommandError("history_off", "history is off (--history-retention 0)")
            entries, gaps = await self._history_for(peer.subscription, request)
            for gap in gaps:
                self.hub.send_to(peer, orjson.dumps(gap))
            for entry in entries:
                kind = orjson.loads(entry.raw).get("type")
                if not peer.subscription.wants(RECORDED, entry.bot, kind):
                    continue
                self.hub.send_to(
                    peer, encode_tagged_envelope(entry.raw, entry.relay_ms, entry.bot, entry.id)
                )
                sent_up_to[entry.bot] = position_key(entry.id)
        except CommandError as refused:
            self.hub.send_to(
                peer,
                orjson.dumps({"type": "error", "error": refused.code, "message": refused.message}),
            )
        except Exception as exc:
            log.exception("history replay for %s failed", peer.client_id)
            self.hub.send_to(
                peer, orjson.dumps({"type": "error", "error": "replay_failed", "message": str(exc)})
            )
        finally:
            # No await from here on: nothing can arrive between the flush and the release.
            for bot, entry_id, payload in held:
                if position_key(entry_id) > sent_up_to.get(bot, (-1, -1)):
                    self.hub.send_to(peer, payload)
            self.hub.release(peer)

    async def _history_for(
        self, subscription: Subscription, request: ReplayRequest
    ) -> tuple[list[Entry], list[dict[str, Any]]]:
        assert self.history is not None
        entries: list[Entry] = []
        gaps: list[dict[str, Any]] = []
        for bot in await self.history.bots():
            if not subscription.wants_bot(bot):
                continue
            if request.last is not None:
                entries += await self.history.read_last(bot, request.last)
                continue
            assert request.since is not None
            entries += await self.history.read(bot, request.since, "+", MAX_REPLAY)
            since_ms = position_key(request.since)[0]
            for from_ms, to_ms, relay in await self.history.deaf_periods(since_ms):
                # With several relays another may have heard it; this says who did not.
                gaps.append(
                    {
                        "type": "bot:gap",
                        "bot": bot,
                        "reason": "relay_deaf",
                        "relay": relay,
                        "from": f"{from_ms}-0",
                        "to": f"{to_ms}-0",
                    }
                )
            first_ever, oldest = await self.history.retained_from(bot)
            if (
                first_ever is not None
                and oldest is not None
                and position_key(first_ever) < position_key(oldest)
                and position_key(request.since) < position_key(oldest)
            ):
                # Asked for more than is kept: say which part is missing, not nothing.
                gaps.append(
                    {
                        "type": "bot:gap",
                        "bot": bot,
                        "reason": "trimmed",
                        "from": max(request.since, first_ever, key=position_key),
                        "to": oldest,
                    }
                )
        entries.sort(key=lambda e: e.seq)
        if request.last is not None:
            entries = entries[-request.last :]
        return entries[:MAX_REPLAY], gaps

    def send_current_status(self, peer: Peer) -> None:
        """A client that starts watching statuses first learns every bot's current one."""
        for payload in self.monitor.status_messages(peer.subscription.wants_bot):
            self.hub.send_to(peer, payload)

    def known_bots(self) -> list[str]:
        return self.monitor.book.bots()

    # --- health -------------------------------------------------------------------
    async def whole_health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: this relay's, or with --workers every worker's, merged."""
        ok, body = self.health()
        if self.worker is None:
            return ok, body
        return await gather_health(self.worker, body)

    async def whole_metrics(self) -> bytes:
        """/metrics: this relay's, or with --workers every worker's, merged. Rendered off
        the event loop: with many bots it is a large text, and clients must not wait."""
        own = await asyncio.to_thread(self.metrics.render)
        if self.worker is None:
            return own
        return await gather_metrics(self.worker, own)

    async def _start_private_socket(self, worker: Worker) -> None:
        """Where sibling workers ask for this one's own /metrics and /healthz."""

        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(body=await asyncio.to_thread(self.metrics.render))

        async def healthz(_request: web.Request) -> web.Response:
            return web.Response(body=orjson.dumps(self.health()[1]))

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        self._private = web.AppRunner(app, access_log=None)
        await self._private.setup()
        path = worker.socket_path()
        path.unlink(missing_ok=True)  # left by a crashed predecessor
        await web.UnixSite(self._private, str(path)).start()

    def public_health(self) -> tuple[bool, dict[str, Any]]:
        """What anyone may see of this relay's health (the data port's /healthz)."""
        ok, body = self.health()
        return ok, public_health(ok, body)

    def health(self, *, error_text: bool = True) -> tuple[bool, dict[str, Any]]:
        """The operator's view: /healthz?detail=1, and what sibling workers merge. Without
        `error_text` the reason leaves out the Redis error, which names Redis's address."""
        source = self.source
        alive = source is not None and source.is_alive()
        body: dict[str, Any] = {
            "status": "ok" if alive else "unavailable",
            "redis": source.status() if source is not None else "not started",
            "clients": len(self.hub),
            "channels": self.settings.channel,
            "uptime_s": round(time.monotonic() - self._started_at, 3),
            "version": __version__,
            "pid": os.getpid(),
        }
        if self.worker is not None:
            body["worker"] = self.worker.index
        if not alive:
            reason = "relay starting" if source is None else "Redis subscription not verified"
            body["reason"] = (
                f"{reason}: {source.last_error}" if source is not None and error_text else reason
            )
            if source is not None and source.down_since is not None:
                body["redis_down_since_ms"] = int(source.down_since * 1000)
        return alive, body

    # --- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        settings = self.settings
        if settings.auth == "none" and not is_loopback(settings.host):
            log.warning(
                "serving %s with no authentication (--allow-anonymous): anyone who can reach "
                "ports %d and %d reads every bot's data",
                settings.host,
                settings.port,
                settings.http_port,
                extra={"event": "anonymous_exposed", "host": settings.host},
            )
        redis_url, self.embedded = await resolve_redis_url(settings)
        self.source = RedisSource(
            redis_url,
            settings.channel,
            self.on_redis_message,
            self.metrics,
            health_interval_s=settings.redis_health_interval,
            backoff=Backoff(cap_s=settings.reconnect_max_delay),
            patterns=settings.channel_pattern,
            on_deaf=self.relay_deaf,
        )
        if settings.history_retention > 0:
            self.history = History(
                redis_url,
                self.metrics,
                retention_s=settings.history_retention,
                max_entries=settings.history_max_entries,
            )
            self.history.start()
            self.rollups = RollupStore(self.history.redis)
            self.rollups.start()
        tls = tls_context(settings)
        reuse_port = self.worker is not None
        await self.dataplane.start(settings.host, settings.port, tls, reuse_port=reuse_port)
        if self.worker is not None:
            await self._start_private_socket(self.worker)
        if settings.http_port:
            self._http_refusals = Refusals(self.metrics.http_refused)
            self.http = HttpPlane(
                build_app(
                    self.whole_health,
                    self.whole_metrics,
                    self.monitor,
                    self.history,
                    self.rollups,
                    silence_ms=int(settings.silence_timeout * 1000),
                    authenticate=self.authenticate if self.verifier is not None else None,
                    metrics_token=settings.metrics_token,
                    dashboard_config=lambda: self.dashboard_config(tls is not None),
                    hosts=self.hosts,
                    frame_ancestors=settings.frame_ancestors,
                    refused=self._http_refusals,
                ),
                refused=self._http_refusals,
                max_connections=settings.max_http_connections,
                request_timeout_s=settings.http_request_timeout,
            )
            await self.http.start(settings.host, settings.http_port, tls, reuse_port=reuse_port)
        self._source_task = asyncio.create_task(self.source.run(), name="redis-source")
        self._state_task = asyncio.create_task(self._keep_relay_state(), name="relay-state")
        if settings.webhook_url:
            self.lease = WebhookLease(
                redis_url, self.relay_id, self.webhooks.submit, ttl_s=settings.webhook_lease
            )
            self.monitor.alert_sink = self.lease.notify
            self.lease.start()
        self.webhooks.start()
        self.monitor.start()
        if self.history is not None:
            self._seed_task = asyncio.create_task(self._seed_from_history(), name="seed-bots")
        if self.verifier is not None and self.verifier.jwks is not None:
            self._jwks_task = asyncio.create_task(
                self._keep_jwks(self.verifier.jwks), name="jwks-refresh"
            )
        log.info(
            "relay listening: %s://%s:%d/ (data), %s; relaying %s from %s",
            "wss" if tls else "ws",
            settings.host,
            self.dataplane.port,
            f"{'https' if tls else 'http'}://{settings.host}:{self.http.port}/ (HTTP)"
            if self.http
            else "HTTP plane off",
            self.source.describe(),
            redact_url(redis_url),
            extra={
                "event": "listening",
                "ws_port": self.dataplane.port,
                "tls": tls is not None,
                "http_port": self.http.port if self.http else 0,
                "host": settings.host,
                "redis_url": redact_url(redis_url),
                "channels": settings.channel,
                "patterns": settings.channel_pattern,
            },
        )

    @property
    def redis_url(self) -> str:
        assert self.source is not None
        return self.source.url

    async def stop(self) -> None:
        """Stop accepting, close every client with 1001, unsubscribe, stop child processes."""
        log.info(
            "shutting down: closing %d clients",
            len(self.hub),
            extra={"event": "shutdown", "clients": len(self.hub)},
        )
        self.dataplane.stop_accepting()
        self.hub.close_all(CloseCode.GOING_AWAY, REASON_SHUTDOWN)
        if self.lease is not None:
            await self.lease.stop()  # notes what was sent, hands the lease over
        await self.monitor.stop()
        await self.webhooks.stop()
        if self.source is not None:
            self.source.stopping()
        await cancel_and_wait(
            self._jwks_task, self._source_task, self._state_task, self._seed_task, *self._replays
        )
        await self._wait_clients_gone(self.settings.shutdown_timeout)
        if self.http is not None:
            await self.http.stop()
        if self._http_refusals is not None:
            self._http_refusals.close()
        if self._private is not None:
            await self._private.cleanup()
        if self.rollups is not None:
            await self.rollups.stop()
        if self.history is not None:
            await self.history.stop()
        if self.embedded is not None:
            self.embedded.stop()
        log.info("relay stopped", extra={"event": "stopped"})

    async def _wait_clients_gone(self, timeout_s: float) -> None:
        if not await self.hub.wait_empty(timeout_s):
            for peer in self.hub.peers():
                self.hub.remove(peer, "did not finish the closing handshake in time")
