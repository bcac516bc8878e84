"""The newcomer's path (issue 14): a README short enough to read first, docs pages whose
tables of contents and links lead somewhere, a licence, a changelog and one version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pingpong_relay

ROOT = Path(__file__).resolve().parents[2]
LICENSE = ROOT / "LICENSE"
PYPROJECT = ROOT / "pyproject.toml"


def _pyproject() -> dict[str, object]:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))


def test_the_license_file_names_the_license_pyproject_declares() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    declared = project["license"]
    assert isinstance(declared, str), "license is an SPDX expression (setuptools 77+)"
    assert LICENSE.exists(), "LICENSE is missing"
    text = LICENSE.read_text(encoding="utf-8")
    assert declared in text.splitlines()[0].split(), f"LICENSE's first line names {declared}"
    if declared == "MIT":
        assert "Permission is hereby granted, free of charge" in text
        assert re.search(r"^Copyright \(c\) \d{4} ", text, re.MULTILINE)


def test_the_version_is_defined_in_one_place() -> None:
    config = _pyproject()
    project = config["project"]
    assert isinstance(project, dict)
    assert "version" not in project, "pyproject.toml must not repeat the version literally"
    assert "version" in project.get("dynamic", [])
    tool = config["tool"]
    assert isinstance(tool, dict)
    dynamic = tool["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "pingpong_relay.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", pingpong_relay.__version__)
