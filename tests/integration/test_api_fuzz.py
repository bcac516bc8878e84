"""The HTTP plane fuzzed against its own OpenAPI document: schemathesis (its CLI, as an
integrator would run it) generates requests for every operation from /openapi.json and
sends them to a live relay on a real Redis, with auth off, with --auth jwt and a valid
token, and with --auth jwt and none. Every check it has must pass (no 5xx, every status,
content type, header and body as documented, bad input refused, auth enforced where the
document says), and the relay must still serve everyone afterwards.

Bounded: at most MAX_EXAMPLES generated cases per operation and phase, a fixed seed (a
failure can be replayed with `st run … --seed`), and a deadline on the whole run."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import orjson
import pytest

from pingpong_relay.auth import mint
from pingpong_relay.http.operations import OPERATIONS
from tests.integration.http_support import JWT, SECRET, bearer
from tests.support import Collector, RedisServer, RelayFactory, RelayProcess, publish

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# 25 in `make test` (about a minute for the three runs); set more for a deeper run.
MAX_EXAMPLES = int(os.environ.get("PINGPONG_FUZZ_EXAMPLES", "25"))
SEED = 20261206
DEADLINE_S = 600.0  # a run takes well under a minute; this only stops a hung one
PUSH_TOKEN = "fuzz-push-token-0123456789"
METRICS_TOKEN = "fuzz-metrics-token-" + "m" * 20
BOTS = ("alpha", "public-1")
# Realistic values, offered half the time, so that generated requests also reach the core
# logic (a known bot, a real push token, a dashboard file) rather than only its 404s.
CONFIG = f"""
[dictionaries.tokens]
values = ["{PUSH_TOKEN}"]
[dictionaries.bots]
values = [{", ".join(f'"bot:pingpong/{b}"' for b in BOTS)}]
[dictionaries.files]
values = ["dashboard.js", "dashboard.css", "index.html"]

[parameters]
"path.token" = {{ dictionary = "tokens", probability = 0.5 }}
"query.bot" = {{ dictionary = "bots", probability = 0.5 }}
"path.file" = {{ dictionary = "files", probability = 0.5 }}

# A mute's times are checked against the clock (not in the past, at most a year long),
# which no schema can say: a schema-valid body may also be refused (400, its field named).
[[operations]]
include-operation-id = "addMute"
checks.positive_data_acceptance.expected-statuses = ["201", "400", "401", "403"]
"""
# Every check schemathesis has is on by default (the command line's --checks would
# override the per-operation setting above); the push limits are raised so that the
# generated pushes reach the inlet instead of its 429.
RELAY_FLAGS = (
    "--public-bots",
    "bot:pingpong/public-*",
    "--push-token",
    f"{PUSH_TOKEN}=pushed",
    "--push-rate",
    "1000",
    "--push-address-rate",
    "1000",
)


def _beat(bot: str) -> bytes:
    now = round(time.time() * 1000)
    body = {"type": "pong", "latency": 12.5, "timestamp": now, "source": bot}
    return orjson.dumps(body)


async def _serving(redis: RedisServer, ws_url: str) -> Collector:
    """A client on the data plane, with the relay's bots known to it and its history."""
    client = Collector()
    await client.connect(ws_url)
    for n, bot in enumerate(BOTS):
        await publish(redis.url, _beat(bot))
        await client.wait_count(n + 1)
    return client


async def _fuzz(relay: RelayProcess, tmp_path: Path, *headers: str) -> str:
    """Runs schemathesis over every operation; its whole output, failing the test with
    it when any check failed."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    # The document the relay serves, from a file: read from its URL, schemathesis would
    # leave out the operation that serves it.
    status, document = await relay.get("/openapi.json")
    assert status == 200
    schema = tmp_path / "openapi.json"
    schema.write_bytes(document)
    args = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        str(schema),
        "--url",
        relay.http_url,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(tmp_path / "junit.xml"),
        *(part for header in headers for part in ("--header", header)),
    ]
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), DEADLINE_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = out.decode("utf-8", "replace")
    assert process.returncode == 0, text
    print(text[text.rfind("=== SUMMARY") :])  # the figures, shown by pytest -rP
    return text


def _tested(output: str, report: Path) -> tuple[set[str], int]:
    """(the operations tested, by "METHOD /path"; the test cases generated), from the JUnit
    report and the summary."""
    names = {case.get("name", "") for case in ElementTree.parse(report).iter("testcase")}
    cases = re.search(r"(\d+) generated", output)
    assert cases is not None, output
    return names - {"Stateful tests"}, int(cases.group(1))


def _assert_all_tested(output: str, report: Path) -> None:
    """Every operation was fuzzed, with at least two cases each on average."""
    tested, cases = _tested(output, report)
    expected = {f"{op.method} {op.path}" for op in OPERATIONS}
    assert tested == expected, output
    assert cases >= 2 * len(expected), output


async def _still_serving(
    relay: RelayProcess, redis: RedisServer, client: Collector, headers: dict[str, str]
) -> None:
    """Healthy afterwards: /healthz says ok, no request was answered 500, and the client
    connected before the fuzzing still gets what a bot publishes."""
    status, body = await relay.get("/healthz")
    assert (status, orjson.loads(body)["status"]) == (200, "ok")
    status, metrics = await relay.get("/metrics", headers=headers)
    assert status == 200
    assert 'pingpong_http_refused_total{reason="internal_error"} 0.0' in metrics.decode()
    seen = len(client.messages)
    await publish(redis.url, _beat("after-fuzzing"))
    (last,) = (await client.wait_count(seen + 1))[seen:]
    assert last["type"] == "bot:pingpong"
    assert last["data"]["source"] == "after-fuzzing"


@pytest.mark.timeout(900)
async def test_every_operation_holds_its_contract_with_auth_off(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path
) -> None:
    relay = await start_relay(redis_server.url, *RELAY_FLAGS)
    client = await _serving(redis_server, relay.ws_url)
    output = await _fuzz(relay, tmp_path)
    _assert_all_tested(output, tmp_path / "junit.xml")
    await _still_serving(relay, redis_server, client, {})
    await client.close()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
async def test_every_operation_holds_its_contract_under_jwt_auth(
    redis_server: RedisServer, start_relay: RelayFactory, tmp_path: Path, with_token: bool
) -> None:
    relay = await start_relay(
        redis_server.url,
        *JWT,
        "--metrics-token",
        METRICS_TOKEN,
        *RELAY_FLAGS,
        env={"PINGPONG_JWT_SECRET": SECRET},
    )
    token = mint(SECRET, "fuzzer", now_s=time.time(), ttl_s=3600, scopes=("metrics", "mute"))
    client = await _serving(redis_server, relay.ws_url_with(f"token={token}"))
    headers = (f"Authorization: Bearer {token}",) if with_token else ()
    output = await _fuzz(relay, tmp_path, *headers)
    _assert_all_tested(output, tmp_path / "junit.xml")
    if not with_token:  # every data route refused it, as documented
        status, _ = await relay.get("/bots")
        assert status == 401
    await _still_serving(relay, redis_server, client, bearer(METRICS_TOKEN))
    await client.close()
