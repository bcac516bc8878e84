"""`pingpong-relay watch` as a person meets it (issue 14, point 4): a token, a refusal that
says why and ends the command, and a relay it cannot reach retried with backoff, aloud."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time

import pytest

from pingpong_relay.auth import mint
from tests.support import RedisServer, RelayFactory, RelayProcess, free_port

SECRET = "watch-test-secret-" + "w" * 40


def _token(ttl_s: float = 600.0, *, now_s: float | None = None) -> str:
    return mint(SECRET, "watcher", now_s=time.time() if now_s is None else now_s, ttl_s=ttl_s)


async def _watch(
    url: str, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pingpong_relay", "watch", url, *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def guarded(redis_server: RedisServer, start_relay: RelayFactory) -> RelayProcess:
    return await start_relay(redis_server.url, "--auth", "jwt", env={"PINGPONG_JWT_SECRET": SECRET})


@pytest.mark.parametrize("given_as", ["flag", "env"])
async def test_watch_token_gets_a_guarded_relays_heartbeats(
    redis_server: RedisServer, guarded: RelayProcess, given_as: str
) -> None:
    token = _token()
    if given_as == "flag":
        watch = await _watch(guarded.ws_url, "--token", token, "--count", "1")
    else:
        watch = await _watch(guarded.ws_url, "--count", "1", env={"PINGPONG_TOKEN": token})
    await guarded.wait_for("client_connected")
    await redis_server.publish(b'{"type":"ping","latency":5,"timestamp":1,"source":"bot"}')
    code, out, err = await _finish(watch)
    assert code == 0, err
    assert out.startswith("PING latency 5 ms")


@pytest.mark.parametrize(
    ("token", "refusal"),
    [
        (None, "401 unauthorized (no token: send Authorization: Bearer <token>)"),
        (_token(60, now_s=time.time() - 3600), "401 unauthorized (token expired)"),
        ("not-a-jwt", "401 unauthorized (not a JWT)"),
    ],
    ids=["none", "expired", "invalid"],
)
async def test_a_refused_handshake_says_why_and_exits_1_without_retrying(
    guarded: RelayProcess, token: str | None, refusal: str
) -> None:
    args = ("--token", token) if token is not None else ()
    code, out, err = await _finish(await _watch(guarded.ws_url, *args))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [f"watch: the relay refused the connection: {refusal}"]
    assert len(guarded.events("auth_refused")) == 1  # one try, no retry


async def test_a_bad_request_is_a_refusal_too(relay: RelayProcess) -> None:
    code, _, err = await _finish(await _watch(relay.ws_url_with("types=pang")))
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith("watch: the relay refused the connection: 400 ")
    assert "pang" in line


_RETRY = re.compile(r"watch: cannot reach (\S+): (.+); retrying in (\d+\.\d) s")


async def test_an_unreachable_relay_is_retried_with_growing_delays_said_each_time() -> None:
    url = f"ws://127.0.0.1:{free_port()}/"
    watch = await _watch(url)
    assert watch.stderr is not None
    lines: list[str] = []
    try:
        while len(lines) < 3:
            line = await asyncio.wait_for(watch.stderr.readline(), 30)
            assert line, "watch exited instead of retrying"
            lines.append(line.decode().rstrip("\n"))
    finally:
        watch.kill()
        await watch.wait()
    matches = [_RETRY.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert {m.group(1) for m in matches if m} == {url}
    assert {m.group(2) for m in matches if m} == {"Connection refused"}
    delays = [float(m.group(3)) for m in matches if m]
    # Doubling from 1 s with jitter down to half: 0.5-1, 1-2, 2-4 s (printed to 0.1 s).
    for delay, (low, high) in zip(delays, [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)], strict=True):
        assert low - 0.05 <= delay <= high + 0.05, delays


async def test_watch_once_that_never_connects_exits_1_saying_why() -> None:
    url = f"ws://127.0.0.1:{free_port()}/"
    code, out, err = await _finish(await _watch(url, "--once"))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [f"watch: cannot reach {url}: Connection refused"]
