"""TLS: the Redis subscription over rediss://, and the relay's own wss:// and https://."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp
import orjson
import pytest
import trustme

from tests.support import DESIGN_PING, Collector, RedisServer, RelayFactory, tls_in_front


async def test_subscription_over_tls_with_a_custom_ca(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path
) -> None:
    async with tls_in_front(redis_server, tmp_path) as (proxy, url):
        relay = await start_relay(url)
        client = Collector()
        await client.connect(relay.ws_url)
        await relay.wait_for("client_connected")
        assert await redis_server.publish(DESIGN_PING) == 1
        [envelope] = await client.wait_count(1)
        assert envelope["data"]["latency"] == 10
        assert proxy.connections >= 1
        await client.close()


async def test_tls_with_an_unknown_ca_is_refused_and_retried(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    proxy = await asyncio.start_server(refuse, "127.0.0.1", 0, ssl=context)
    port = proxy.sockets[0].getsockname()[1]
    try:
        relay = await start_relay(
            f"rediss://localhost:{port}/0", "--reconnect-max-delay", "0.3", wait_subscribed=False
        )
        retry = await relay.wait_for("redis_retry", count=2)
        assert "CERTIFICATE_VERIFY_FAILED" in retry["error"] or "certificate" in retry["error"]
        status, _ = await relay.get("/healthz")
        assert status == 503
    finally:
        proxy.close()


async def test_wss_and_https_round_trip_with_a_certificate_made_in_the_test(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    relay = await start_relay(
        redis_server.url, "--tls-cert", str(cert_path), "--tls-key", str(key_path)
    )
    assert relay.events("listening")[0]["tls"] is True
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"wss://127.0.0.1:{relay.port}/", ssl=client_context) as ws:
            await relay.wait_for("client_connected")
            assert await redis_server.publish(DESIGN_PING) == 1
            envelope = orjson.loads((await ws.receive(timeout=10)).data)
            assert envelope["data"]["latency"] == 10
        async with session.get(
            f"https://127.0.0.1:{relay.http_port}/healthz", ssl=client_context
        ) as response:
            assert response.status == 200
            assert (await response.json())["redis"] == "subscribed"
        # Without the CA the certificate is refused: TLS is really in force.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"https://127.0.0.1:{relay.http_port}/healthz")


async def test_tls_flags_must_come_together_and_be_readable(tmp_path: Path) -> None:
    import sys

    for args in (["--tls-cert", "x.pem"], ["--tls-cert", "nope.pem", "--tls-key", "nope.pem"]):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pingpong_relay",
            "serve",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=tmp_path,
        )
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 2
        assert b"--tls-" in err
