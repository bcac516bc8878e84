"""Size limits a reader can hold in their head: no module over 450 lines, no class over 300,
no function over 80, in the package, the tests, the benchmark and the scripts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("src", "tests", "bench", "harness", "scripts")
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 80


def _python_files() -> list[Path]:
    files = [
        path
        for tree in TREES
        if (ROOT / tree).is_dir()
        for path in (ROOT / tree).rglob("*.py")
        if "node_modules" not in path.parts
    ]
    assert files, "no Python files found: the test looks in the wrong place"
    return sorted(files)


def oversized(source: str) -> list[str]:
    """What in `source` is over its limit, as "kind name: lines"."""
    found = []
    lines = source.count("\n")
    if lines > MAX_MODULE_LINES:
        found.append(f"module: {lines}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
            if length > limit:
                found.append(f"{type(node).__name__} {node.name}: {length}")
    return found


def test_the_limits_catch_what_is_over_them() -> None:
    long_function = "def f():\n" + "    x = 1\n" * 80
    assert oversized(long_function) == ["FunctionDef f: 81"]
    assert oversized("x = 1\n" * 451) == ["module: 451"]
    assert oversized("def f():\n" + "    x = 1\n" * 79) == []


@pytest.mark.parametrize("path", _python_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_nothing_is_over_its_size_limit(path: Path) -> None:
    assert oversized(path.read_text(encoding="utf-8")) == []
