"""Generated docs (the tables in docs/*.md, docs/protocol.md) fail the tests when they drift."""

from __future__ import annotations

import importlib
import re

import pytest
from scripts.update_docs import (
    DOCS,
    PROTOCOL,
    README,
    SECTION_FILES,
    generated_sections,
    section,
)

from pingpong_relay.protocol_docs import markdown

MARKER = re.compile(r"^<!-- ([a-z0-9-]+):start", re.MULTILINE)


@pytest.mark.parametrize("name", list(generated_sections()))
def test_generated_sections_match_the_code(name: str) -> None:
    page = SECTION_FILES[name]
    text = page.read_text(encoding="utf-8")
    start, end = section(text, name)
    assert text[start:end].strip() == generated_sections()[name].strip(), (
        f"{page.name} section {name} is stale; regenerate it with `make docs`"
    )


def test_every_generated_section_is_where_make_docs_writes_it() -> None:
    assert set(SECTION_FILES) == set(generated_sections())
    pages = [README, *sorted(DOCS.glob("*.md"))]
    found = sorted(
        (name, page.name)
        for page in pages
        for name in MARKER.findall(page.read_text(encoding="utf-8"))
    )
    expected = sorted((name, page.name) for name, page in SECTION_FILES.items())
    assert found == expected, "each marker section once, in the page SECTION_FILES names"


def test_protocol_summary_matches_the_asyncapi_document() -> None:
    assert PROTOCOL.read_text(encoding="utf-8") == markdown(), (
        "docs/protocol.md is stale; run `make docs`"
    )


def _resolve(dotted: str) -> object:
    """The object a dotted name under pingpong_relay names (module, then attributes)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(["pingpong_relay", *parts[:split]]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_message_path_in_the_code_map_names_real_code() -> None:
    text = SECTION_FILES["code-map"].read_text(encoding="utf-8")
    start = text.index("One message's path:")
    paragraph = text[start : text.index("\n\n", start)]
    names = re.findall(r"`([a-z_]+(?:\.[A-Za-z_]+)+)`", paragraph)
    assert len(names) >= 8, names
    for name in names:
        assert _resolve(name) is not None, name
