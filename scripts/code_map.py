"""docs/architecture.md's map of the code, generated from each module's docstring and the
layers of pyproject.toml's import-linter contracts (`make docs` writes it; a test fails on
drift)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "pingpong_relay"
PACKAGE_NAME = "pingpong_relay"
LAYER_TITLES = (
    "Entry point",
    "Wiring (`app/`): the command line and one relay's lifecycle",
    "Outer edges: the HTTP plane, workers, the bot-side and client APIs",
    "Ingestion: heartbeats from push URLs, MQTT and pollers, published to Redis",
    "Inner edges: the WebSocket data plane, Redis, outgoing webhooks",
    "Telemetry: the Prometheus registry",
)


def summary(path: Path) -> str:
    """The first line of a module's docstring (empty if it has none)."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return (docstring or "").strip().splitlines()[0] if docstring else ""


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return {contract["id"]: contract for contract in contracts}


def _files(dotted: str) -> list[tuple[str, Path]]:
    """(shown path, file) of a module, or of every module of a subpackage."""
    relative = dotted.removeprefix(PACKAGE_NAME).lstrip(".").replace(".", "/")
    package = PACKAGE / relative
    if package.is_dir():
        modules = sorted(path for path in package.glob("*.py") if path.name != "__init__.py")
        files = [package / "__init__.py", *modules]
        return [
            (f"{relative}/" if path.name == "__init__.py" else f"{relative}/{path.name}", path)
            for path in files
        ]
    return [(f"{relative}.py", PACKAGE / f"{relative}.py")]


def _table(modules: list[str]) -> list[str]:
    rows = ["| module | role |", "| --- | --- |"]
    for dotted in modules:
        for shown, path in _files(dotted):
            role = summary(path).replace("|", "\\|")
            rows.append(f"| `{shown}` | {role} |")
    return rows


def code_map() -> str:
    """The map: one table per layer, top (may import everything below) to bottom."""
    contracts = _contracts()
    layers = contracts["layers"]["layers"]
    core = contracts["pure-core"]["source_modules"]
    assert isinstance(layers, list)
    assert isinstance(core, list)
    lines: list[str] = []
    for title, layer in zip(LAYER_TITLES, layers, strict=True):
        lines += [f"**{title}**", "", *_table([part.strip() for part in layer.split("|")]), ""]
    lines += ["**The pure core** (no I/O library, no edge)", "", *_table(sorted(core))]
    return "\n".join(lines)
