"""deploy/container/compose.yaml as Compose reads it: `docker-compose config` (no daemon)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.container_files import COMPOSE
from tests.support import ROOT

# Debian's docker-compose (1.29), which `make pytest` installs.
DOCKER_COMPOSE = os.environ.get("PINGPONG_DOCKER_COMPOSE", "/usr/bin/docker-compose")
SECRET = "a-test-secret-of-at-least-32-characters"


def compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert Path(DOCKER_COMPOSE).exists(), f"no {DOCKER_COMPOSE}: `make pytest` installs it"
    # An empty env file: a .env a user left beside compose.yaml must not answer for them.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    return subprocess.run(
        [DOCKER_COMPOSE, "--env-file", str(env_file), "-f", str(COMPOSE), "config"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_refuses_to_start_until_the_jwt_secret_is_chosen(tmp_path: Path) -> None:
    done = compose_config(tmp_path, {})
    assert done.returncode != 0
    assert "set PINGPONG_JWT_SECRET" in done.stderr


def test_compose_accepts_the_file_and_fills_in_the_secret(tmp_path: Path) -> None:
    done = compose_config(tmp_path, {"PINGPONG_JWT_SECRET": SECRET})
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    relay = config["services"]["relay"]
    assert relay["environment"]["PINGPONG_JWT_SECRET"] == SECRET
    assert Path(relay["build"]["context"]) == ROOT
    assert config["services"]["redis"]["volumes"] == ["redis-data:/data:rw"]
    assert "redis-data" in config["volumes"]
