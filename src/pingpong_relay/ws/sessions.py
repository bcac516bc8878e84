"""A client's life after the upgrade: its token, its commands, its welcome and its replay.

Its token's grant, refresh and expiry; its commands; what it is told on joining; and the
history replay it asked for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from pingpong_relay.audience import Peer
from pingpong_relay.auth import (
    AuthError,
    Grant,
    TokenVerifier,
    extract_token,
    offered_subprotocol,
)
from pingpong_relay.codes import REASON_TOKEN_EXPIRED, CloseCode
from pingpong_relay.hub import Hub
from pingpong_relay.instruments import Counter, Labelled
from pingpong_relay.messages import encode_tagged_envelope, excerpt
from pingpong_relay.replay import HistoryReader, plan_replay
from pingpong_relay.subscriptions import (
    RECORDED,
    CommandError,
    ReplayRequest,
    apply,
    parse_command,
    position_key,
)
from pingpong_relay.tasks import cancel_and_wait

__all__ = ["Session", "SessionPeer", "Sessions"]

log = logging.getLogger("pingpong_relay.sessions")


@dataclass(slots=True)
class Session:
    """One client's state beyond its subscription: what its token grants, the replay it
    asked for when connecting, and the timer that ends it when the token expires."""

    grant: Grant | None = None
    replay: ReplayRequest | None = None
    expiry: asyncio.TimerHandle | None = None


class SessionPeer(Peer, Protocol):
    """A hub peer that carries its session (`ws.peer.ClientPeer`)."""

    session: Session


class SessionMetrics(Protocol):
    """What sessions count."""

    @property
    def auth_failures(self) -> Labelled[Counter]: ...
    @property
    def client_frames_refused(self) -> Counter: ...


class StatusSource(Protocol):
    """Where a newly watching client's first statuses come from (`monitor.Monitor`)."""

    def status_messages(self, wants_bot: Callable[[str], bool]) -> list[bytes]:
        """Every bot's current status as a message, for the bots `wants_bot` accepts."""

    def bots(self) -> list[str]:
        """Every bot the relay knows."""


class Sessions:
    """Authenticates upgrades and owns each connected client's session."""

    def __init__(
        self,
        hub: Hub,
        metrics: SessionMetrics,
        statuses: StatusSource,
        relay_state: Callable[[], bytes],
        *,
        verifier: TokenVerifier | None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        self.verifier = verifier
        self._statuses = statuses
        self._relay_state = relay_state
        self._wall_clock_ns = wall_clock_ns
        self._replays: set[asyncio.Task[None]] = set()
        self._expiring: set[asyncio.TimerHandle] = set()
        # Bound by the wiring once the history is open; None while history is off.
        self.history: HistoryReader | None = None

    # --- before the upgrade -------------------------------------------------------
    def authenticate(
        self, headers: Mapping[str, str], query: str
    ) -> tuple[Grant | None, str | None]:
        """Checks a client's or a request's token; raises AuthError to refuse it, counted by
        reason (the plane that asked logs it: it knows the path and the address)."""
        if self.verifier is None:
            return None, offered_subprotocol(headers)
        try:
            presented = extract_token(headers, query)
            grant = self.verifier.verify(presented.token, self._now_s())
        except AuthError as refused:
            self.metrics.auth_failures.labels(refused.reason).inc()
            raise
        return grant, presented.echo_subprotocol

    # --- a client's life ----------------------------------------------------------
    def joined(self, peer: SessionPeer) -> None:
        """A client is connected: its expiry, its first statuses, and any replay."""
        session = peer.session
        if session.grant is not None:
            self._schedule_expiry(peer, session.grant)
        # wants(), not the events asked for: the token's events scope applies here too.
        if peer.subscription.wants("status"):
            self.send_current_status(peer)
        if peer.subscription.wants("relay"):
            self.hub.send_to(peer, self._relay_state())
        if session.replay is not None:
            held = self.hub.hold(peer)
            task = asyncio.create_task(
                self._replay(peer, session.replay, held), name=f"replay-{peer.client_id}"
            )
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)

    def left(self, peer: SessionPeer) -> None:
        """A client is gone: its expiry timer with it."""
        self._cancel_expiry(peer.session)

    def command(self, peer: SessionPeer, raw: bytes) -> None:
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
                    "bots": [b for b in self._statuses.bots() if peer.subscription.in_scope(b)],
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
            reply = self._refused(peer, raw, refused)
        if request_id is not None:
            reply["id"] = request_id
        self.hub.send_to(peer, orjson.dumps(reply))
        if subscription.wants("status") and not before.wants("status"):
            self.send_current_status(peer)
        if subscription.wants("relay") and not before.wants("relay"):
            self.hub.send_to(peer, self._relay_state())

    def send_current_status(self, peer: Peer) -> None:
        """A client that starts watching statuses first learns every bot's current one."""
        for payload in self._statuses.status_messages(peer.subscription.wants_bot):
            self.hub.send_to(peer, payload)

    async def close(self) -> None:
        """Shutdown: stops replays in progress and every expiry timer."""
        await cancel_and_wait(*self._replays)
        for handle in self._expiring:
            handle.cancel()
        self._expiring.clear()

    # --- commands and tokens --------------------------------------------------------
    def _refused(self, peer: Peer, raw: bytes, refused: CommandError) -> dict[str, Any]:
        self.metrics.client_frames_refused.inc()
        shown = excerpt(raw)
        log.warning(
            "refused command from %s: %s: %s; frame: %s",
            peer.client_id,
            refused.code,
            refused.message,
            shown,
            extra={
                "event": "command_refused",
                "client": peer.client_id,
                "error": refused.code,
                "detail": refused.message,
                "excerpt": shown,
            },
        )
        return {"type": "error", "error": refused.code, "message": refused.message}

    def _refresh(self, peer: SessionPeer, token: str | None) -> dict[str, Any]:
        """A new token in-band, before the old one expires: same subject, new scope/expiry."""
        if self.verifier is None:
            raise CommandError("auth_off", "this relay does not use tokens")
        current = peer.session.grant
        try:
            grant = self.verifier.verify(token, self._now_s())
        except AuthError as refused:
            self.metrics.auth_failures.labels(refused.reason).inc()
            raise CommandError(refused.reason, refused.message) from None
        if current is not None and grant.subject != current.subject:
            raise CommandError("bad_token", "the new token is for another subject")
        peer.session.grant = grant
        self.hub.resubscribe(
            peer, replace(peer.subscription, scope_bots=grant.bots, scope_events=grant.events)
        )
        self._schedule_expiry(peer, grant)
        return {
            "type": "ack",
            "action": "refresh",
            "expires_at_ms": int(grant.expires_at_s * 1000) if grant.expires_at_s else None,
        }

    def _schedule_expiry(self, peer: SessionPeer, grant: Grant) -> None:
        """A token that expires while connected ends the connection at that moment."""
        session = peer.session
        self._cancel_expiry(session)
        if grant.expires_at_s is None:
            return
        delay_s = max(0.0, grant.expires_at_s - self._now_s())

        def expire() -> None:
            self._cancel_expiry(session)
            peer.close(CloseCode.TOKEN_EXPIRED, REASON_TOKEN_EXPIRED)

        session.expiry = asyncio.get_running_loop().call_later(delay_s, expire)
        self._expiring.add(session.expiry)

    def _cancel_expiry(self, session: Session) -> None:
        if session.expiry is not None:
            session.expiry.cancel()
            self._expiring.discard(session.expiry)
            session.expiry = None

    def _now_s(self) -> float:
        return self._wall_clock_ns() / 1e9

    # --- replay ------------------------------------------------------------------------
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
            entries, gaps = await plan_replay(self.history, peer.subscription, request)
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
