"""Regenerates the generated parts of the docs: `make docs` (tests fail when they drift)."""

from __future__ import annotations

import sys
from pathlib import Path

from pingpong_relay.protocol_docs import codes_table, markdown
from pingpong_relay.settings_flags import markdown_reference
from pingpong_relay.status_codes import CLOSE_CODES, HTTP_STATUSES, UPGRADE_STATUSES
from scripts.code_map import code_map

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PROTOCOL = ROOT / "docs" / "protocol.md"


def readme_sections() -> dict[str, str]:
    """Each generated README section by its marker name."""
    return {
        "config-reference": markdown_reference(),
        "close-codes": codes_table(CLOSE_CODES, "code"),
        "upgrade-statuses": codes_table(UPGRADE_STATUSES, "status"),
        "http-statuses": codes_table(HTTP_STATUSES, "status"),
        "code-map": code_map(),
    }


def section(text: str, name: str) -> tuple[int, int]:
    """Where the body between `<!-- name:start … -->` and `<!-- name:end -->` lies."""
    start = text.index(f"<!-- {name}:start")
    start = text.index("\n", start) + 1
    return start, text.index(f"<!-- {name}:end -->")


def rendered_readme(text: str) -> str:
    """The README with every generated section rendered afresh."""
    for name, body in readme_sections().items():
        start, end = section(text, name)
        text = text[:start] + body + "\n" + text[end:]
    return text


def main() -> None:
    """Writes the README's generated sections and docs/protocol.md."""
    README.write_text(rendered_readme(README.read_text()))
    PROTOCOL.parent.mkdir(exist_ok=True)
    PROTOCOL.write_text(markdown())
    sys.stdout.write(f"wrote {README.name} sections and {PROTOCOL.relative_to(ROOT)}\n")


if __name__ == "__main__":
    main()
