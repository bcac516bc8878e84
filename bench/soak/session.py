"""One client session of the soak's load process: the seqs it got, and how it ended."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Final, Protocol

import orjson
from picows import WSFrame, WSListener, WSMsgType, WSTransport

from .ranges import merge_ranges

SOURCE: Final = "soak"
# Received seqs are kept per session in a bitmap starting this far below the first one,
# so a late, lower seq still lands in it.
BITMAP_SLACK: Final = 64
_TEXT: Final = WSMsgType.TEXT
_CLOSE: Final = WSMsgType.CLOSE


class Pool(Protocol):
    """What a session tells the pool that holds it."""

    def opened(self, client: SoakClient) -> None:
        """The session got its relay:state."""

    def ended(self, client: SoakClient) -> None:
        """The session is gone."""

    def latency(self, ms: float) -> None:
        """One delivery's publish → arrival."""


class SoakClient(WSListener):
    """One session: connect → relay:state (open) → close. Records the seqs it got."""

    def __init__(self, pool: Pool, sid: int) -> None:
        super().__init__()
        self.pool = pool
        self.sid = sid
        self.transport: WSTransport | None = None
        self.connect_at = time.time()
        self.connected = False
        self.open_at: float | None = None
        self.worker: int | None = None
        self.pid: int | None = None
        self.redis_at_open: str | None = None
        self.end_at: float | None = None
        self.end_reason: str | None = None
        self.close_code: int | None = None
        self.base = -1
        self.bits = bytearray()
        self.below: set[int] = set()
        self.max_seq = -1
        self.count = self.dups = self.ooo = self.conflated = 0
        self.states = self.other = self.worker_changed = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.connected = True

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == _TEXT:
            self._text(frame.get_payload_as_bytes(), time.time())
        elif kind == _CLOSE:
            if self.end_at is None:  # the relay's close, not the echo of ours
                self.close_code = int(frame.get_close_code().value)
            with contextlib.suppress(Exception):
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    def _text(self, payload: bytes, now: float) -> None:
        try:
            message = orjson.loads(payload)
            what = message["type"]
            if what == "bot:pingpong":
                data = message["data"]
                if data.get("source") == SOURCE:
                    self._got(int(data["seq"]), now, float(data["timestamp"]))
            elif what == "relay:state":
                self._state(message, now)
            elif what == "relay:conflated":
                self.conflated += int(message.get("skipped", 0))
            else:
                self.other += 1
        except (ValueError, KeyError, TypeError):
            self.other += 1

    def _state(self, message: dict[str, Any], now: float) -> None:
        self.states += 1
        if self.open_at is None:
            self.open_at = now
            self.worker = message.get("worker")
            self.pid = message.get("pid")
            self.redis_at_open = message.get("redis")
            self.pool.opened(self)
        elif message.get("pid") != self.pid:
            self.worker_changed += 1

    def _got(self, seq: int, now: float, sent_ms: float) -> None:
        if self.base < 0:
            self.base = max(0, seq - BITMAP_SLACK)
        index = seq - self.base
        if index < 0:
            if seq in self.below:
                self.dups += 1
                return
            self.below.add(seq)
        else:
            bits = self.bits
            if index >= len(bits):
                bits.extend(bytes(index - len(bits) + 1024))
            if bits[index]:
                self.dups += 1
                return
            bits[index] = 1
        self.count += 1
        if seq < self.max_seq:
            self.ooo += 1
        else:
            self.max_seq = seq
        self.pool.latency(now * 1000.0 - sent_ms)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.end_at is None:
            self.end_at = time.time()
            self.end_reason = "dropped"
        self.pool.ended(self)

    def ranges(self) -> list[list[int]]:
        """The distinct seqs received, as sorted half-open [first, last + 1) ranges."""
        out: list[list[int]] = []
        bits, base = self.bits, self.base
        start = bits.find(1)
        while start >= 0:
            stop = bits.find(0, start)
            if stop < 0:
                stop = len(bits)
            out.append([base + start, base + stop])
            start = bits.find(1, stop)
        return merge_ranges([*out, *([s, s + 1] for s in self.below)])

    def record(self) -> dict[str, Any]:
        """The session as the harness reads it back."""
        return {
            "sid": self.sid,
            "worker": self.worker,
            "pid": self.pid,
            "redis_at_open": self.redis_at_open,
            "connect_at": self.connect_at,
            "open_at": self.open_at,
            "end_at": self.end_at,
            "end_reason": self.end_reason,
            "close_code": self.close_code,
            "count": self.count,
            "dups": self.dups,
            "ooo": self.ooo,
            "conflated": self.conflated,
            "states": self.states,
            "other": self.other,
            "worker_changed": self.worker_changed,
            "ranges": self.ranges(),
        }
