"""What the hub test modules share: fake peers, a payload, the buffer limit, send and populate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pingpong_relay.frames import text_frame, text_payloads
from pingpong_relay.hub import BroadcastResult, Hub
from pingpong_relay.subscriptions import DEFAULT_SUBSCRIPTION, Subscription
from pingpong_relay.telemetry.metrics import RelayMetrics

PAYLOAD = b'{"type":"bot:pingpong","data":{"type":"ping"},"timestamp":1,"source":"bot"}'
LIMIT_BYTES = 1024


@dataclass
class FakePeer:
    client_id: str
    remote: str = "127.0.0.1:50000"
    buffered: int = 0
    open: bool = True
    sent: list[bytes] = field(default_factory=list)
    closes: list[tuple[int, bytes]] = field(default_factory=list)
    subscription: Subscription = DEFAULT_SUBSCRIPTION

    writes: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.sent.extend(text_payloads(data))

    @property
    def writer(self) -> Callable[[bytes], None]:
        return self.write

    @property
    def text_sender(self) -> Callable[[bytes], None]:
        def send(payload: bytes) -> None:
            self.write(text_frame(payload))  # framed as the WebSocket library frames it
            self.writes[-1] = payload  # what the hub handed over: its one payload object

        return send

    def buffered_bytes(self) -> int:
        return self.buffered

    def is_open(self) -> bool:
        return self.open

    def close(self, code: int, reason: bytes) -> None:
        self.closes.append((code, reason))
        self.open = False


@dataclass
class BrokenPeer(FakePeer):
    """A peer whose socket write fails (reset by the other end)."""

    def write(self, data: bytes) -> None:
        raise ConnectionResetError("connection reset by peer")


def sample(metrics: RelayMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def send(hub: Hub, *args: Any, **kwargs: Any) -> BroadcastResult:
    """A broadcast, written at once (the relay's loop flushes on its next turn)."""
    hub.broadcast(*args, **kwargs)
    return hub.flush()


def populate(hub: Hub, *peers: FakePeer) -> None:
    for peer in peers:
        hub.add(peer)


def healthy_peers(count: int) -> list[FakePeer]:
    return [FakePeer(f"CLIENT-ok-{index}") for index in range(count)]


STATUS_ONLY = Subscription(events=frozenset({"status"}))
