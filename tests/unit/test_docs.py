"""The newcomer's path (issue 14): a README short enough to read first, docs pages whose
tables of contents and links lead somewhere, a licence, a changelog and one version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pingpong_relay

ROOT = Path(__file__).resolve().parents[2]
CHANGELOG = ROOT / "CHANGELOG.md"
LICENSE = ROOT / "LICENSE"
PYPROJECT = ROOT / "pyproject.toml"
CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


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


def _changelog_sections() -> list[tuple[str, str]]:
    """(version heading, its body) for each ## section of the changelog."""
    text = CHANGELOG.read_text(encoding="utf-8")
    parts = re.split(r"^## (.*)$", text, flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def test_the_changelog_keeps_a_changelog_up_to_the_current_version() -> None:
    assert CHANGELOG.exists(), "CHANGELOG.md is missing"
    text = CHANGELOG.read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text
    sections = _changelog_sections()
    assert sections[0][0] == "[Unreleased]", "the first section is ## [Unreleased]"
    releases = [re.fullmatch(r"\[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})", h) for h, _ in sections]
    assert all(releases[1:]), "each release is ## [X.Y.Z] - YYYY-MM-DD"
    versions = [match[1] for match in releases[1:] if match]
    dates = [match[2] for match in releases[1:] if match]
    assert versions[0] == pingpong_relay.__version__, "the newest release is the current version"
    assert dates == sorted(dates, reverse=True), "newest first"
    for heading, body in sections:
        kinds = re.findall(r"^### (.*)$", body, flags=re.MULTILINE)
        assert kinds, f"{heading} lists its changes under ### Added, ### Fixed, …"
        assert set(kinds) <= CHANGE_TYPES, f"{heading}: {set(kinds) - CHANGE_TYPES}"
