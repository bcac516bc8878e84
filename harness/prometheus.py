"""A real Prometheus (Debian's package) of our own on a free loopback port: scraping what a
test points it at, evaluating the rule files it is given, answering PromQL over its HTTP API."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp

from .processes import HarnessError, free_port, spawn, stop_process

__all__ = ["PROMETHEUS", "PrometheusServer", "find_prometheus", "scrape_job"]

# What `make test` installs (Debian's prometheus package); PINGPONG_PROMETHEUS points
# elsewhere, as PINGPONG_CHROMIUM does for the browser.
PROMETHEUS: Final = os.environ.get("PINGPONG_PROMETHEUS", "/usr/bin/prometheus")


def find_prometheus() -> str | None:
    """The prometheus server's path, or None when it is not installed."""
    if os.access(PROMETHEUS, os.X_OK):
        return PROMETHEUS
    return shutil.which("prometheus")


def scrape_job(
    name: str, targets: Sequence[str], *, interval_s: float = 1.0, bearer: str | None = None
) -> dict[str, Any]:
    """One `scrape_configs` entry: `targets` (host:port, over HTTP at /metrics) every
    `interval_s`, with a bearer token when /metrics wants one (--metrics-token)."""
    job: dict[str, Any] = {
        "job_name": name,
        "scrape_interval": f"{interval_s:g}s",
        "scrape_timeout": f"{interval_s:g}s",
        "static_configs": [{"targets": list(targets)}],
    }
    if bearer is not None:
        job["authorization"] = {"type": "Bearer", "credentials": bearer}
    return job


class PrometheusServer:
    """`prometheus` on 127.0.0.1:`port` (a free one by default), its TSDB and config in a
    directory of its own (`directory`, e.g. a test's tmp_path).

    `scrape_configs` are Prometheus's own (see `scrape_job`); `rule_files` are loaded and
    evaluated every `evaluation_interval_s`. The config is written as JSON, which YAML
    reads. Its log is kept in `log_path`, for a test that fails to show.
    """

    def __init__(
        self,
        directory: Path,
        scrape_configs: Sequence[Mapping[str, Any]],
        *,
        rule_files: Sequence[Path] = (),
        evaluation_interval_s: float = 1.0,
        port: int | None = None,
    ) -> None:
        executable = find_prometheus()
        if executable is None:
            raise HarnessError(
                f"no prometheus at {PROMETHEUS}: `make test` installs Debian's prometheus "
                "package (or point PINGPONG_PROMETHEUS at a prometheus binary)"
            )
        self.executable = executable
        self.port = port or free_port()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = self.directory / "prometheus.yml"
        self.config.write_text(
            json.dumps(
                {
                    "global": {"evaluation_interval": f"{evaluation_interval_s:g}s"},
                    "rule_files": [str(path) for path in rule_files],
                    "scrape_configs": list(scrape_configs),
                },
                indent=2,
            )
        )
        self.log_path = self.directory / "prometheus.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """Its base URL (the HTTP API is under /api/v1)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 30.0) -> None:
        """Starts it and waits until /-/ready answers 200 (its TSDB open, ready to query)."""
        with self.log_path.open("ab") as log:
            self.process = await spawn(
                self.executable,
                f"--config.file={self.config}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        await self._wait_ready(timeout_s)

    async def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while True:
                if self.process is not None and self.process.returncode is not None:
                    raise HarnessError(
                        f"prometheus exited ({self.process.returncode}): {self.log()[-2000:]}"
                    )
                try:
                    async with session.get(f"{self.url}/-/ready") as response:
                        if response.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise HarnessError(f"prometheus not ready on {self.port}: {self.log()[-2000:]}")
                await asyncio.sleep(0.1)

    def log(self) -> str:
        """What it logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def api(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET /api/v1/`path` with `params`: the whole answer ({"status", "data"} or
        {"status": "error", "errorType", "error"}), whatever its HTTP status."""
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(f"{self.url}/api/v1/{path}", params=params) as response,
        ):
            answer: dict[str, Any] = await response.json(content_type=None)
            return answer

    async def query(self, expr: str) -> dict[str, Any]:
        """An instant query at the current time: the API's whole answer."""
        return await self.api("query", {"query": expr})

    async def query_range(self, expr: str, span_s: float, step_s: float = 1.0) -> dict[str, Any]:
        """A range query over the last `span_s` seconds (what a graph panel runs): the
        API's whole answer."""
        end = time.time()
        return await self.api(
            "query_range",
            {
                "query": expr,
                "start": f"{end - span_s:.3f}",
                "end": f"{end:.3f}",
                "step": f"{step_s:g}",
            },
        )

    async def vector(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's series ({"metric", "value"} each); HarnessError when the
        query fails (a parse error, an unknown function)."""
        answer = await self.query(expr)
        if answer.get("status") != "success":
            raise HarnessError(f"{expr}: {answer.get('errorType')}: {answer.get('error')}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    async def label_values(self, label: str, match: str) -> list[str]:
        """The values `label` takes on series matching the selector `match` (what
        Grafana's label_values(match, label) lists)."""
        answer = await self.api(f"label/{label}/values", {"match[]": match})
        if answer.get("status") != "success":
            raise HarnessError(f"label {label} of {match}: {answer.get('error')}")
        values: list[str] = answer["data"]
        return values

    async def wait_for(
        self,
        expr: str,
        until: Callable[[list[dict[str, Any]]], bool] = bool,
        *,
        timeout_s: float = 30.0,
        poll_s: float = 0.25,
    ) -> list[dict[str, Any]]:
        """Polls an instant query until `until(series)` holds (by default: any series);
        returns those series. Scrapes come on Prometheus's schedule, so this polls."""
        deadline = time.monotonic() + timeout_s
        while True:
            series = await self.vector(expr)
            if until(series):
                return series
            if time.monotonic() > deadline:
                raise HarnessError(f"{expr}: still {series} after {timeout_s} s")
            await asyncio.sleep(poll_s)

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (SIGKILL after `grace_s`)."""
        if self.process is not None:
            await stop_process(self.process, grace_s)
