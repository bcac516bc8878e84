"""The flood's report: one table of measures."""

from __future__ import annotations

import argparse
from typing import Any

from ..tables import table
from .bot import mb


def _rows(args: argparse.Namespace, f: dict[str, Any], watch_s: float) -> list[list[str]]:
    memories = [mb(f["memory_before"]), mb(f["memory_after"])]
    if f["memory_expired"] is not None:
        memories.append(mb(f["memory_expired"]))
    seeded = f["seeded"]
    seed_line = f"{f['seed_s']:.2f} s" + (
        f" (the seed itself {seeded['seconds']:.3f} s)" if "seconds" in seeded else ""
    )
    fired = "–" if f["fired_s"] is None else f"{f['fired_s']:.1f} s later"
    return [
        ["junk bot ids published", f"{args.junk:,} in {f['published_s']:.1f} s"],
        [
            "relay received / recorded the flood",
            f"{f['received_s']:.1f} s / {f['recorded_s']:.1f} s",
        ],
        ["relay RSS before → after the flood", f"{mb(f['rss_before'])} → {mb(f['rss_after'])}"],
        ["relay CPU during the flood (user+sys)", f"{f['cpu_flood']:.1f} s"],
        ["Redis used_memory before → after flood → after expiry", " → ".join(memories)],
        [f"junk history gone (retention {args.retention:g} s)", f["expiry"]],
        [
            "bots tracked / evicted / untracked messages",
            f"{len(f['bots'])} / {f['evicted']:,.0f} / {f['untracked']:,.0f}",
        ],
        ["bot label values in /metrics", f"{f['labels']}"],
        ["real bot after the flood: status, 1m count", f"{f['real_status']}, {f['real_count']}"],
        [
            "real bot stopped → its silence alert posted",
            f"{fired} (timeout {args.silence_timeout:g} s + for {args.silence_for:g} s)",
        ],
        ["webhook posts for junk ids", f"{f['junk_posts']}"],
        ["restart: spawn → bots_seeded", seed_line],
        [
            "restart: bots seeded, alerts taken over",
            f"{seeded['bots']:,}, {seeded.get('alerts_restored', '—')}",
        ],
        ["restart: real bot's status", f["restart_status"]],
        [f"restart: webhook posts in the next {watch_s:g} s", f"{f['after_restart']}"],
        ["restart: relay RSS", mb(f["rss_restarted"])],
        ["real bot back: its alert's resolution posted", f["resolution"]],
    ]


def render(args: argparse.Namespace, figures: dict[str, Any], pinned: str, watch_s: float) -> str:
    """The flood's Markdown: a heading, how it ran, and the table of measures."""
    lines = [
        f"## Flood: {args.junk:,} one-message bot ids",
        "",
        f"Relay default `--max-bots` (256) unless `--relay-args` says otherwise; "
        f"`--history-retention {args.retention:g}s`; {pinned}.",
        "",
        *table(["measure", "value"], _rows(args, figures, watch_s), text_first=2),
    ]
    return "\n".join(lines)
