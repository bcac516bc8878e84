"""The Markdown report of `bench.run`: a heading, then each part's section, then the notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .context import Part


def _heading(results: dict[str, Any]) -> list[str]:
    args = results["args"]
    meta = results["meta"]
    repeat = args["repeat"]
    relay_args = f", extra arguments `{' '.join(args['relay_args'])}`" if args["relay_args"] else ""
    procs = f"; here always {args['client_procs']}" if args.get("client_procs") else ""
    return [
        f"## pingpong-relay benchmark: {args['rate']:g} msg/s for {args['duration']:g} s "
        f"per scenario, {'median of ' + str(repeat) + ' runs' if repeat > 1 else '1 run'}",
        "",
        f"Python {meta['python']}, {meta['cpus']} CPUs, {meta['platform']}; relay at INFO with "
        f"JSON logs to a file{relay_args}; clients in one uvloop/picows process (two above "
        f"8,000 clients{procs}); all on loopback; "
        f"{meta['elapsed_s']:.0f} s in all.",
        "",
    ]


def render_report(results: dict[str, Any], parts: Sequence[Part]) -> str:
    """The whole report; a part whose entry is empty (skipped) has no section."""
    out = _heading(results)
    notes: list[str] = []
    for part in parts:
        section = results.get(part.key)
        if not section:
            continue
        lines, part_notes = part.render(section, results["args"])
        out += lines
        notes += part_notes
    if notes:
        out += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(out)
