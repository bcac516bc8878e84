"""The newcomer's path (issue 14): a README short enough to read first, docs pages whose
tables of contents and links lead somewhere, a licence, a changelog and one version."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import pingpong_relay

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CHANGELOG = ROOT / "CHANGELOG.md"
LICENSE = ROOT / "LICENSE"
PYPROJECT = ROOT / "pyproject.toml"
MAX_README_LINES = 400
# Written by `make docs` from the AsyncAPI document (tests/unit/test_readme.py keeps it
# current); its layout is the generator's, so it has no hand-kept table of contents.
GENERATED_PAGES = {"protocol.md"}
CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+).*?\1")
MARKDOWN_LINK_TEXT = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def _pages() -> list[Path]:
    """Every page under docs/, its folders' (docs/bots/) included."""
    return sorted(DOCS.rglob("*.md"))


def _hand_written_pages() -> list[Path]:
    return [page for page in _pages() if page.name not in GENERATED_PAGES]


def _linking_files() -> list[Path]:
    """Every Markdown file of ours whose links a reader follows."""
    folders = (ROOT, ROOT / "bench", ROOT / "examples")
    return sorted([*(path for folder in folders for path in folder.glob("*.md")), *_pages()])


def _prose_lines(text: str) -> list[str]:
    """The lines of `text` with fenced code blocks blanked (so line numbers stay)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
        else:
            lines.append("" if fenced else line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation other than '-' and
    '_' dropped, each space a '-'."""
    text = MARKDOWN_LINK_TEXT.sub(r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _headings(text: str) -> list[tuple[int, str]]:
    """(level, anchor) of every heading outside code, with GitHub's -1, -2 for repeats."""
    found: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for line in _prose_lines(text):
        match = HEADING.match(line)
        if match is None:
            continue
        base = anchor(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.append((len(match.group(1)), base if count == 0 else f"{base}-{count}"))
    return found


def _links(lines: list[str]) -> list[str]:
    """Link and image targets in Markdown prose (not in code)."""
    return [
        target
        for line in lines
        for target in LINK.findall(CODE_SPAN.sub(lambda span: "`" * len(span[0]), line))
    ]


def test_anchors_follow_githubs_rules() -> None:
    assert anchor("Several cores: `--workers N`") == "several-cores---workers-n"
    assert anchor("Close codes and HTTP statuses") == "close-codes-and-http-statuses"
    assert anchor("Behind nginx with TLS") == "behind-nginx-with-tls"
    assert anchor("One message's path") == "one-messages-path"
    assert anchor("[0.1.0] - 2026-12-02") == "010---2026-12-02"
    text = "# T\n\n## Tests\n\n```sh\n# not a heading\n```\n\n## Tests\n"
    assert _headings(text) == [(1, "t"), (2, "tests"), (2, "tests-1")]


def test_the_readme_is_at_most_400_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, (
        f"README.md is {lines} lines; keep it to what a newcomer reads first and move the rest "
        "under docs/"
    )


def test_the_readme_starts_with_the_two_commands() -> None:
    lines = [line for line in README.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines[0].startswith("# "), "the README starts with its title"
    fence = next(index for index, line in enumerate(lines) if FENCE.match(line))
    assert fence <= 2, "the commands come right after the title and a one-line description"
    commands = [line.split("#", 1)[0].strip() for line in lines[fence + 1 : fence + 3]]
    assert commands == ["make run", "make test"]


def _linked_from(path: Path, text: str) -> set[Path]:
    """The files the links in `text` (Markdown in `path`) lead to."""
    return {(path.parent / target.split("#")[0]).resolve() for target in _links([text])}


def test_the_readmes_documentation_section_links_every_docs_page() -> None:
    """docs/*.md and each folder's README.md from README's Documentation section; the other
    pages of a folder (docs/bots/freqtrade.md) from that folder's README.md."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Documentation\n")
    end = text.find("\n## ", start + 1)
    linked = _linked_from(README, text[start : end if end != -1 else len(text)])
    top = [page for page in _pages() if page.parent == DOCS or page.name == "README.md"]
    missing = [str(page.relative_to(DOCS)) for page in top if page.resolve() not in linked]
    assert not missing, f"README's Documentation section does not link {missing}"
    for page in set(_pages()) - set(top):
        index = page.parent / "README.md"
        assert index.exists(), f"docs/{page.parent.name}/ has no README.md to list its pages"
        assert page.resolve() in _linked_from(index, index.read_text(encoding="utf-8")), (
            f"{index.relative_to(ROOT)} does not link {page.name}"
        )


@pytest.mark.parametrize(
    "page", _hand_written_pages(), ids=lambda page: str(page.relative_to(DOCS))
)
def test_every_docs_page_starts_with_a_table_of_contents(page: Path) -> None:
    lines = _prose_lines(page.read_text(encoding="utf-8"))
    headings = _headings(page.read_text(encoding="utf-8"))
    sections = [slug for level, slug in headings if level == 2]
    assert headings[0][0] == 1, f"{page.name} starts with its title"
    title = next(index for index, line in enumerate(lines) if line.startswith("# "))
    summary = next((line for line in lines[title + 1 :] if line.strip()), "")
    assert not re.match(r"\s*([-*] |#)", summary), (
        f"{page.name}: a sentence saying what the page is for comes before its contents"
    )
    assert sections, f"{page.name} has no ## sections"
    first_section = next(index for index, line in enumerate(lines) if line.startswith("## "))
    contents = [line for line in lines[:first_section] if re.match(r"\s*[-*] \[", line)]
    top = [line for line in contents if line.startswith(("- ", "* "))]
    top_anchors = [target.removeprefix("#") for target in _links(top)]
    assert top_anchors == sections, (
        f"{page.name}'s table of contents (before its first ## heading) must link each ## "
        f"section in order: {top_anchors} != {sections}"
    )
    every = {slug for _level, slug in headings}
    nested = [target.removeprefix("#") for target in _links(contents)]
    assert set(nested) <= every, f"{page.name}: contents link no heading {set(nested) - every}"


def broken_links(path: Path) -> list[str]:
    """The relative links in `path` that lead to no file, or to no heading of a Markdown file."""
    broken = []
    for target in _links(_prose_lines(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: …
            continue
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md":
            anchors = {slug for _level, slug in _headings(linked.read_text(encoding="utf-8"))}
            if fragment not in anchors:
                broken.append(f"{target}: no such section in {linked.name}")
    return broken


def test_the_link_check_finds_missing_files_and_sections(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## Kept\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Here\n\n[a](#here) [b](other.md#kept) [c](https://example.com/x#y)\n"
        "[d](#gone) [e](missing.md) [f](other.md#gone) `[g](#in-code)`\n\n"
        "```md\n[h](#in-a-block)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == [
        "#gone: no such section in page.md",
        "missing.md: no such file",
        "other.md#gone: no such section in other.md",
    ]


@pytest.mark.parametrize("path", _linking_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    broken = broken_links(path)
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"


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
