"""deploy/container/: the Dockerfile's instructions and compose.yaml, read as the tools do."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from harness.processes import ROOT

__all__ = [
    "COMPOSE",
    "DOCKERFILE",
    "Instruction",
    "compose",
    "env_of",
    "exec_form",
    "healthcheck_argv",
    "instructions",
    "stages",
]

DOCKERFILE: Final = ROOT / "deploy" / "container" / "Dockerfile"
COMPOSE: Final = ROOT / "deploy" / "container" / "compose.yaml"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword, upper-cased, and the rest of its line."""

    keyword: str
    arguments: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The instructions in order: comments dropped, backslash-continued lines joined."""
    found: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        # Docker drops comment lines, even inside a continuation, and blank lines.
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return found


def stages(found: list[Instruction]) -> list[list[Instruction]]:
    """The instructions by build stage, each starting with its FROM (ARGs before the first
    FROM are left out)."""
    result: list[list[Instruction]] = []
    for instruction in found:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def exec_form(arguments: str) -> list[str]:
    """An exec-form argument list (a JSON array of strings), as ENTRYPOINT and CMD take."""
    argv = json.loads(arguments)
    if not (isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)):
        raise ValueError(f"not an exec-form list: {arguments}")
    return argv


def healthcheck_argv(found: list[Instruction]) -> list[str]:
    """The HEALTHCHECK's command, which must be in exec form (no shell in between)."""
    [healthcheck] = [i for i in found if i.keyword == "HEALTHCHECK"]
    _options, separator, command = healthcheck.arguments.partition("CMD ")
    if not separator:
        raise ValueError(f"HEALTHCHECK without CMD: {healthcheck.arguments}")
    return exec_form(command)


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """The KEY=value pairs a stage's ENV instructions set (not expanded: $PATH stays)."""
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def compose(path: Path = COMPOSE) -> dict[str, Any]:
    """compose.yaml as data."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a mapping")
    return data
