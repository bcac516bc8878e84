"""deploy/container/: what the issue asks of the image and the compose file, read from them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pingpong_relay.app.cli import build_parser
from pingpong_relay.settings import Settings
from pingpong_relay.settings_flags import settings_from_args
from tests.container_files import (
    COMPOSE,
    DOCKERFILE,
    Instruction,
    compose,
    env_of,
    exec_form,
    healthcheck_argv,
    instructions,
    stages,
)
from tests.support import ROOT

SECRET = "s" * 32


def final_stage() -> list[Instruction]:
    return stages(instructions())[-1]


def keyword(stage: list[Instruction], name: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == name]


def test_the_base_image_is_a_build_argument_that_both_stages_start_from() -> None:
    found = instructions()
    assert found[0] == Instruction("ARG", "BASE=python:3.11-slim-bookworm")
    froms = [i.arguments for i in found if i.keyword == "FROM"]
    assert froms == ["${BASE} AS build", "${BASE}"]


def test_the_runtime_stage_copies_the_venv_and_installs_no_build_tools() -> None:
    build, runtime = stages(instructions())
    assert any("pip wheel" in run and "--wheel-dir /wheels" in run for run in keyword(build, "RUN"))
    assert keyword(runtime, "COPY") == ["--from=build /opt/venv /opt/venv"]
    runs = " ".join(keyword(runtime, "RUN"))
    for tool in ("apt-get", "pip", "gcc", "build-essential", "curl", "wget"):
        assert tool not in runs


def test_the_build_context_holds_only_what_the_build_stage_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[patterns.index("*") + 1 :][:4] == [
        "!pyproject.toml",
        "!README.md",
        "!LICENSE",
        "!src/",
    ]
    build = stages(instructions())[0]
    copied = {p for args in keyword(build, "COPY") for p in args.split()[:-1]}
    assert copied == {"pyproject.toml", "README.md", "LICENSE", "src/"}


def test_the_relay_runs_as_a_numeric_non_root_user() -> None:
    users = keyword(final_stage(), "USER")
    assert users, "no USER in the runtime stage: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    # The user and its group are created with these ids, so that names resolve inside.
    runs = " ".join(keyword(final_stage(), "RUN"))
    assert f"groupadd --system --gid {gid}" in runs
    assert f"--uid {uid} --gid {gid}" in runs


def test_the_healthcheck_requests_healthz_with_python_not_curl() -> None:
    argv = healthcheck_argv(instructions())
    assert argv[:2] == ["python3", "-c"]
    assert "http://127.0.0.1:{port}/healthz" in argv[2]
    assert "PINGPONG_HTTP_PORT" in argv[2]


def test_ports_entrypoint_and_env_make_a_relay_that_serves_every_interface() -> None:
    runtime = final_stage()
    assert keyword(runtime, "EXPOSE") == ["2808 2809"]
    assert exec_form(keyword(runtime, "ENTRYPOINT")[-1]) == ["pingpong-relay"]
    assert exec_form(keyword(runtime, "CMD")[-1]) == ["serve"]
    env = env_of(runtime)
    assert env["PINGPONG_HOST"] == "0.0.0.0"
    assert env["PATH"].startswith("/opt/venv/bin:")


def relay_service() -> dict[str, Any]:
    service: dict[str, Any] = compose()["services"]["relay"]
    return service


def test_compose_runs_a_redis_7_that_persists_to_a_named_volume() -> None:
    data = compose()
    redis = data["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--appendonly") + 1] == "yes"
    [volume] = redis["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/data"
    assert name in data["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert redis["restart"] == "unless-stopped"


def test_compose_starts_the_relay_once_redis_is_healthy() -> None:
    relay = relay_service()
    assert relay["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert relay["restart"] == "unless-stopped"
    context = (COMPOSE.parent / relay["build"]["context"]).resolve()
    assert context == ROOT
    assert (context / relay["build"]["dockerfile"]) == DOCKERFILE
    published = {port.rsplit(":", 1)[-1] for port in relay["ports"]}
    assert published == {"2808", "2809"}


def test_compose_makes_the_user_choose_the_jwt_secret() -> None:
    environment = relay_service()["environment"]
    assert environment["PINGPONG_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["PINGPONG_AUTH"] == "jwt"
    # ${VAR:?message}: compose refuses to start without it; there is no default to forget.
    assert re.fullmatch(r"\$\{PINGPONG_JWT_SECRET:\?[^}]+\}", environment["PINGPONG_JWT_SECRET"])


def container_settings(**changes: str | None) -> Settings:
    """The relay's settings from the image's env and the compose file's, the secret chosen."""
    env = {**env_of(final_stage()), **relay_service()["environment"]}
    env["PINGPONG_JWT_SECRET"] = SECRET
    for name, value in changes.items():
        if value is None:
            del env[name]
        else:
            env[name] = value
    return settings_from_args(build_parser().parse_args(["serve"]), env)


def test_the_compose_env_makes_settings_the_relay_accepts() -> None:
    settings = container_settings()
    assert settings.host == "0.0.0.0"
    assert settings.auth == "jwt"
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.redis_url_explicit  # never an embedded Redis inside the container


def test_without_auth_the_container_env_is_refused() -> None:
    with pytest.raises(ValueError, match="--allow-anonymous"):
        container_settings(PINGPONG_AUTH=None)
