"""The commands the container image runs, run outside it: no container can run here.

The build stage's COPY and RUN instructions, read from the Dockerfile, build a venv in a
temporary directory that stands in for the image's root (their absolute paths rewritten
into it); then the image's ENTRYPOINT and CMD serve with the image's env and the compose
file's (on loopback, against a Redis of the test's own), and the image's HEALTHCHECK
command, read from the Dockerfile too, says healthy, then unhealthy once Redis is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.logs import LogFollower
from harness.processes import spawn, stop_process
from pingpong_relay import __version__
from tests.container_files import (
    compose,
    env_of,
    exec_form,
    healthcheck_argv,
    instructions,
    stages,
)
from tests.support import ROOT, RedisServer, free_port

SECRET = "a-test-secret-of-at-least-32-characters"
# The paths the build stage writes, which the test puts under its stand-in root.
IMAGE_PATHS = re.compile(r"(?<![\w.-])(/opt/build|/opt/venv|/wheels)\b")
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class ImageRoot:
    """A directory standing in for the image's root, with the build stage's venv in it."""

    root: Path

    def rewrite(self, text: str) -> str:
        """A path or command of the Dockerfile, its image paths moved under the root."""
        return IMAGE_PATHS.sub(lambda m: str(self.root) + m.group(1), text)

    def env(self) -> dict[str, str]:
        """The runtime stage's ENV, PATH resolved here."""
        env = env_of(stages(instructions())[-1])
        env["PATH"] = self.rewrite(env["PATH"]).replace("$PATH", "/usr/bin:/bin")
        return env


def _copy(sources: list[str], destination: Path) -> None:
    """COPY's rules for these: a directory's contents go into the destination, files by
    name (what .dockerignore leaves out of the context is left out here too)."""
    for source in sources:
        path = ROOT / source
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
            shutil.copytree(path, destination, ignore=ignore, dirs_exist_ok=True)
        else:
            destination.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination / path.name)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> ImageRoot:
    """The build stage, step by step: WORKDIR, COPY from the repository, RUN (a minute)."""
    image = ImageRoot(tmp_path_factory.mktemp("image"))
    build = stages(instructions())[0]
    workdir = image.root
    # A clean env, as in a build container (PYTHONPATH would make pip think the relay is
    # installed already), but for pip's own settings: how this machine reaches PyPI.
    env = {name: value for name, value in os.environ.items() if name.startswith("PIP_")}
    # python3 is this test's interpreter (3.11+), as it is the base image's in the image.
    env["PATH"] = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    env["HOME"] = str(image.root)
    for instruction in build[1:]:
        if instruction.keyword == "WORKDIR":
            workdir = image.root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = instruction.arguments.split()
            _copy(sources, workdir / destination)
        elif instruction.keyword == "RUN":
            done = subprocess.run(
                ["sh", "-c", image.rewrite(instruction.arguments)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT_S,
            )
            assert done.returncode == 0, f"{instruction}:\n{done.stdout}\n{done.stderr}"
        else:
            raise AssertionError(f"the test does not know how to build {instruction}")
    return image


@dataclass
class Container:
    """The image's ENTRYPOINT and CMD running, and its env (what HEALTHCHECK runs with)."""

    process: asyncio.subprocess.Process
    env: dict[str, str]
    log: LogFollower


@pytest.fixture
async def container(image_root: ImageRoot, redis_server: RedisServer) -> AsyncIterator[Container]:
    runtime = stages(instructions())[-1]
    entrypoint = [exec_form(i.arguments) for i in runtime if i.keyword == "ENTRYPOINT"][-1]
    command = [exec_form(i.arguments) for i in runtime if i.keyword == "CMD"][-1]
    env = {
        **image_root.env(),
        **compose()["services"]["relay"]["environment"],
        # What the test must change: the secret a user chooses, loopback, its own ports
        # and Redis.
        "PINGPONG_JWT_SECRET": SECRET,
        "PINGPONG_HOST": "127.0.0.1",
        "PINGPONG_PORT": str(free_port()),
        "PINGPONG_HTTP_PORT": str(free_port()),
        "PINGPONG_REDIS_URL": redis_server.url,
    }
    executable = shutil.which(entrypoint[0], path=env["PATH"])
    assert executable is not None
    assert executable.startswith(str(image_root.root))
    process = await spawn(
        executable,
        *entrypoint[1:],
        *command,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    log = LogFollower(running=lambda: process.returncode is None)
    assert process.stderr is not None
    reader = asyncio.create_task(log.pump(process.stderr), name="container-log")
    try:
        await log.wait_for("listening")
        await log.wait_for("redis_subscribed")
        yield Container(process, env, log)
    finally:
        await stop_process(process, 15.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader, 5.0)


async def healthcheck(container: Container) -> tuple[int, str]:
    """The Dockerfile's HEALTHCHECK command, run with the container's env."""
    probe = await asyncio.create_subprocess_exec(
        *healthcheck_argv(instructions()),
        env=container.env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(probe.communicate(), 15.0)
    assert probe.returncode is not None
    return probe.returncode, stderr.decode()


async def test_the_healthcheck_passes_then_fails_once_redis_is_gone(
    container: Container, redis_server: RedisServer
) -> None:
    assert await healthcheck(container) == (0, "")

    redis_server.kill()
    await container.log.wait_for("redis_outage_start")
    code, stderr = await healthcheck(container)
    assert code == 1
    assert "HTTP Error 503" in stderr


async def test_docker_stop_signal_ends_the_relay_cleanly(container: Container) -> None:
    container.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(container.process.wait(), 15.0) == 0


def test_the_venv_holds_the_relay_and_no_pip(image_root: ImageRoot) -> None:
    venv = Path(image_root.rewrite("/opt/venv"))
    version = subprocess.run(
        [str(venv / "bin" / "pingpong-relay"), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert version.stdout.strip() == f"pingpong-relay {__version__}"
    assert not (venv / "bin" / "pip").exists()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert not list(site.glob("pip-*.dist-info"))
    assert not list(site.glob("pytest*"))  # runtime dependencies only, no dev tools
