"""A client that upgrades and then never reads again, and the kernel's view of its socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

from harness.processes import HarnessError

TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip


def tcp_socket(local_port: int, remote_port: int) -> dict[str, Any] | None:
    """The IPv4 TCP socket local_port → remote_port from /proc/net/tcp: its state and
    queues (tx: bytes sent but not yet acknowledged, including what the peer's closed
    window holds back; rx: bytes received but not yet read), or None if there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
            if (
                int(local.rsplit(":", 1)[1], 16) == local_port
                and int(remote.rsplit(":", 1)[1], 16) == remote_port
            ):
                tx, rx = (int(part, 16) for part in queues.split(":"))
                return {"state": TCP_STATES.get(state, state), "tx_bytes": tx, "rx_bytes": rx}
    return None


class StalledClient:
    """A raw socket that completes the WebSocket upgrade and then never reads again.

    Its receive buffer is made small before connecting, so the relay's writes back up
    quickly: first into that buffer, then into the relay's own socket send buffer
    (which the kernel may grow to net.ipv4.tcp_wmem's maximum), then into the relay's
    transport, where its --slow-client policy acts.
    """

    def __init__(self, host: str, port: int, rcvbuf: int = 4096) -> None:
        self.host = host
        self.port = port
        self.rcvbuf = rcvbuf
        self.sock: socket.socket | None = None
        self.local_port = 0

    def _connect(self, timeout_s: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(timeout_s)
        sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:  # a byte at a time: nothing past the headers
            byte = sock.recv(1)
            if not byte:
                raise HarnessError("the relay closed the stalled client during its upgrade")
            head += byte
            if len(head) > 8192:
                raise HarnessError("no end to the upgrade response's headers")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise HarnessError(f"stalled client's upgrade answered {status!r}")
        self.local_port = int(sock.getsockname()[1])
        self.sock = sock

    async def connect(self, timeout_s: float = 10.0) -> None:
        """Connects and upgrades (in a thread: the socket is a blocking one)."""
        await asyncio.to_thread(self._connect, timeout_s)

    def relay_sndbuf(self) -> int | None:
        """The send buffer (bytes) the kernel gives the relay's end of this connection, from
        `ss -m` (tb): how much the relay can hand the kernel before its own buffer grows."""
        try:
            out = subprocess.run(
                [
                    "ss",
                    "-tnmH",
                    "src",
                    f"127.0.0.1:{self.port}",
                    "dst",
                    f"127.0.0.1:{self.local_port}",
                ],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        found = re.search(r"\btb(\d+)", out)
        return int(found.group(1)) if found else None

    def state(self) -> dict[str, Any]:
        """Both ends of the connection as the kernel sees them."""
        relay_end = tcp_socket(self.port, self.local_port)
        own_end = tcp_socket(self.local_port, self.port)
        return {
            "relay_sndbuf": self.relay_sndbuf(),
            "rcvbuf": self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if self.sock is not None
            else None,
            "relay_end": relay_end,
            "own_end": own_end,
        }

    def close(self) -> None:
        """Closes the socket."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
