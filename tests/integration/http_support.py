"""What the HTTP-plane hardening tests share: tokens for their relay, and raw HTTP exchanges
that show exactly what the relay sent (status, headers, when it closed)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from multidict import CIMultiDict

from pingpong_relay.auth import mint

SECRET = "http-hardening-secret-" + "s" * 40
JWT = ("--auth", "jwt")


def token(*, bots: list[str] | None = None, scopes: tuple[str, ...] = ()) -> str:
    return mint(SECRET, "tester", now_s=time.time(), ttl_s=600, bots=bots, scopes=scopes)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def raw_exchange(port: int, request: bytes, timeout: float = 20.0) -> bytes:
    """Sends raw bytes, returns everything until the relay closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def headers_of(response: bytes) -> CIMultiDict[str]:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return CIMultiDict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in head))


async def closed_by_relay(reader: asyncio.StreamReader, timeout: float = 30.0) -> bytes:
    """What the relay still sent before closing (b"" for a plain close)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    return data
