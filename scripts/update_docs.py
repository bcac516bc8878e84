"""Regenerates the generated parts of the docs: `make docs` (tests fail when they drift)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pingpong_relay.http.openapi import openapi_json
from pingpong_relay.protocol_docs import codes_table, markdown
from pingpong_relay.settings_flags import markdown_reference
from pingpong_relay.status_codes import CLOSE_CODES, HTTP_STATUSES, UPGRADE_STATUSES
from scripts.code_map import code_map

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PROTOCOL = DOCS / "protocol.md"
OPENAPI = DOCS / "openapi.json"
# The page that holds each generated section, between `<!-- name:start … -->` and
# `<!-- name:end -->`; the prose around it is written by hand.
SECTION_FILES: dict[str, Path] = {
    "config-reference": DOCS / "configuration.md",
    "close-codes": DOCS / "api.md",
    "upgrade-statuses": DOCS / "api.md",
    "http-statuses": DOCS / "api.md",
    "code-map": DOCS / "architecture.md",
}


def generated_sections() -> dict[str, str]:
    """Each generated section's body, rendered from the code, by its marker name."""
    return {
        "config-reference": markdown_reference(),
        "close-codes": codes_table(CLOSE_CODES, "code"),
        "upgrade-statuses": codes_table(UPGRADE_STATUSES, "status"),
        "http-statuses": codes_table(HTTP_STATUSES, "status"),
        "code-map": code_map(),
    }


def section(text: str, name: str) -> tuple[int, int]:
    """Where the body between `<!-- name:start … -->` and `<!-- name:end -->` lies."""
    marker = re.search(rf"^<!-- {re.escape(name)}:start.*\n", text, re.MULTILINE)
    if marker is None:
        raise ValueError(f"no <!-- {name}:start --> marker line")
    return marker.end(), text.index(f"<!-- {name}:end -->", marker.end())


def rendered(path: Path, text: str) -> str:
    """`text` (the page at `path`) with each of its generated sections rendered afresh."""
    bodies = generated_sections()
    for name, holder in SECTION_FILES.items():
        if holder == path:
            start, end = section(text, name)
            text = text[:start] + bodies[name] + "\n" + text[end:]
    return text


def main() -> None:
    """Writes every page's generated sections, docs/protocol.md and docs/openapi.json."""
    pages = sorted(set(SECTION_FILES.values()))
    for page in pages:
        page.write_text(rendered(page, page.read_text(encoding="utf-8")), encoding="utf-8")
    PROTOCOL.parent.mkdir(exist_ok=True)
    PROTOCOL.write_text(markdown(), encoding="utf-8")
    OPENAPI.write_text(openapi_json(), encoding="utf-8")
    names = ", ".join(str(page.relative_to(ROOT)) for page in pages)
    written = f"{PROTOCOL.relative_to(ROOT)} and {OPENAPI.relative_to(ROOT)}"
    sys.stdout.write(f"wrote the generated sections of {names}, {written}\n")


if __name__ == "__main__":
    main()
