"""A Mosquitto broker of our own on a free loopback port, which may be stopped and started
again on the same port; and a one-shot MQTT publish."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import aiomqtt

from .processes import HarnessError, free_port, spawn, stop_process

__all__ = ["MosquittoServer", "find_mosquitto", "mqtt_publish"]

# Debian puts the broker in /usr/sbin, often not on a user's PATH.
_CANDIDATES: Final = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str | None:
    """The mosquitto broker's path, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found is not None:
        return found
    return next((path for path in _CANDIDATES if Path(path).is_file()), None)


class MosquittoServer:
    """`mosquitto -c <config>` listening on 127.0.0.1:`port` (a free one by default), with
    anonymous clients allowed (Mosquitto 2 refuses them without a config saying so), or
    with `users` ({name: password}) only those. `extra_config` applies to the listener
    (e.g. certfile and keyfile for TLS). Its log is kept in `log_path`, for a test that
    fails to show."""

    def __init__(
        self,
        port: int | None = None,
        *,
        extra_config: str = "",
        users: Mapping[str, str] | None = None,
    ) -> None:
        executable = find_mosquitto()
        if executable is None:
            raise HarnessError("no mosquitto binary (apt-get install mosquitto)")
        self.executable = executable
        self.port = port or free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="pingpong-mosquitto-"))
        self.config = self.directory / "mosquitto.conf"
        # Run as whoever we are: started as root, mosquitto would switch to its own user,
        # who cannot read the files made here.
        lines = [
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} 127.0.0.1",
            "persistence false",
        ]
        if users:
            lines += ["allow_anonymous false", f"password_file {self._passwords(users)}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n" + extra_config)
        self.log_path = self.directory / "mosquitto.log"
        self.process: asyncio.subprocess.Process | None = None

    def _passwords(self, users: Mapping[str, str]) -> Path:
        path = self.directory / "passwords"
        path.touch(mode=0o600)
        for name, password in users.items():
            subprocess.run(
                ["mosquitto_passwd", "-b", str(path), name, password],
                check=True,
                capture_output=True,
            )
        return path

    @property
    def url(self) -> str:
        """Its mqtt:// URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 10.0) -> None:
        """Starts it and waits until it accepts connections."""
        with self.log_path.open("ab") as log:
            self.process = await spawn(
                self.executable,
                "-c",
                str(self.config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        await self._wait_accepting(timeout_s)

    async def _wait_accepting(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.returncode is not None:
                raise HarnessError(f"mosquitto exited ({self.process.returncode}): {self.log()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise HarnessError(f"mosquitto not accepting on {self.port}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    def log(self) -> str:
        """What it logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM (SIGKILL after `grace_s`); `start` brings it back on the same port."""
        if self.process is not None:
            await stop_process(self.process, grace_s)

    async def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        if self.process is None:
            raise HarnessError("mosquitto was never started")
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 5.0)

    async def restart(self) -> None:
        """Stops it and starts it again on the same port."""
        await self.stop()
        await self.start()

    async def publish(self, topic: str, payload: bytes | str) -> None:
        """One message to `topic` on this broker."""
        await mqtt_publish(self.port, topic, payload)


async def mqtt_publish(
    port: int,
    topic: str,
    payload: bytes | str,
    *,
    host: str = "127.0.0.1",
    qos: int = 1,
    username: str | None = None,
    password: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> None:
    """Publishes one message over a connection of its own (QoS 1 by default: it returns
    once the broker has it)."""
    async with aiomqtt.Client(
        host, port, username=username, password=password, tls_context=tls_context, timeout=10
    ) as client:
        await client.publish(topic, payload, qos=qos)
