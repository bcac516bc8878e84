"""What the monitor test modules share: a hand-moved clock, fake peers, messages, default rules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from pingpong_relay.frames import text_frame, text_payloads
from pingpong_relay.hub import Hub
from pingpong_relay.messages import BotMessage, parse_bot_message
from pingpong_relay.monitor import Monitor
from pingpong_relay.rules import LatencyRule, SilenceRule
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S
from pingpong_relay.subscriptions import DEFAULT_SUBSCRIPTION, Subscription
from pingpong_relay.telemetry.metrics import RelayMetrics

T0 = 1_700_000_000.0
WAIT_S = 10.0  # bound on every wait for a background loop; a healthy run needs milliseconds
ALPHA = "bot:pingpong/alpha"
BETA = "bot:pingpong/beta"


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakePeer:
    client_id: str
    subscription: Subscription = DEFAULT_SUBSCRIPTION
    remote: str = "127.0.0.1:50000"
    sent: list[bytes] = field(default_factory=list)
    closes: list[tuple[int, bytes]] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def write(self, data: bytes) -> None:
        self.sent.extend(text_payloads(data))
        self._arrived.set()

    @property
    def writer(self) -> Callable[[bytes], None]:
        return self.write

    @property
    def text_sender(self) -> Callable[[bytes], None]:
        return lambda payload: self.write(text_frame(payload))

    def buffered_bytes(self) -> int:
        return 0

    def is_open(self) -> bool:
        return not self.closes

    def close(self, code: int, reason: bytes) -> None:
        self.closes.append((code, reason))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [orjson.loads(payload) for payload in self.sent]

    async def until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout_s: float = WAIT_S
    ) -> list[dict[str, Any]]:
        """Waits until the messages received so far satisfy `predicate`."""

        async def wait() -> list[dict[str, Any]]:
            while not predicate(messages := self.messages):
                self._arrived.clear()
                await self._arrived.wait()
            return messages

        return await asyncio.wait_for(wait(), timeout_s)


class RecordingSender:
    """Where the monitor sends alert transitions (the webhooks, in a relay), recording them."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []

    def submit(self, alert: dict[str, Any]) -> None:
        self.submitted.append(alert)


def statuses_of(peer: FakePeer) -> list[tuple[str, str, str | None]]:
    return [
        (m["bot"], m["status"], m["previous"]) for m in peer.messages if m["type"] == "bot:status"
    ]


def alerts_of(peer: FakePeer) -> list[tuple[str, str, str]]:
    return [(m["rule"], m["bot"], m["state"]) for m in peer.messages if m["type"] == "bot:alert"]


def message(latency_ms: float | None = 20.0, kind: str = "ping") -> BotMessage:
    fields: dict[str, Any] = {"type": kind, "timestamp": int(T0 * 1000), "source": "bot"}
    if latency_ms is not None:
        fields["latency"] = latency_ms
    return parse_bot_message(orjson.dumps(fields))


def establish(monitor: Monitor, bot: str, clock: Clock) -> None:
    """Heard ESTABLISHED_MESSAGES times over ESTABLISHED_SPAN_S, without a latency (so no
    sample of it counts): past probation, so the rules apply to it from now on."""
    for i in range(ESTABLISHED_MESSAGES):
        if i:
            clock.now += ESTABLISHED_SPAN_S / (ESTABLISHED_MESSAGES - 1)
        monitor.observe(bot, message(latency_ms=None), clock.now)
    assert monitor.book.is_established(bot)


LATENCY_NOW = LatencyRule(name="slow", percentile=0.95, threshold_ms=100.0, for_s=0.0)
SILENCE_NOW = SilenceRule(name="silent", timeout_s=30.0, interval_factor=3.0, for_s=0.0)


MonitorFactory = Callable[..., Monitor]


def watcher(hub: Hub, name: str, *events: str, bots: tuple[str, ...] | None = None) -> FakePeer:
    peer = FakePeer(f"CLIENT-{name}", Subscription(bots=bots, events=frozenset(events)))
    hub.add(peer)
    return peer


def firing_sample(metrics: RelayMetrics, rule: str, bot: str) -> float | None:
    return metrics.registry.get_sample_value("pingpong_alerts_firing", {"rule": rule, "bot": bot})
