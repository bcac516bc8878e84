"""Markdown tables and the number formats every bench report uses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .stats import median

Run = dict[str, Any]


def ms(value: float) -> str:
    """Milliseconds with about three significant digits; "–" for none."""
    if math.isnan(value):
        return "–"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def count(value: float) -> str:
    """A whole number with thousands separators; "–" for none."""
    return "–" if math.isnan(value) else f"{round(value):,}"


def num(value: float, digits: int = 1) -> str:
    """A number with `digits` decimals; "–" for none."""
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


def mb(kb: float) -> str:
    """KB as MB, one decimal; "–" for none."""
    return "–" if math.isnan(kb) else f"{kb / 1024:,.1f}"


def kb(value: float | None) -> str:
    """Bytes as KB, one decimal; "–" for none."""
    return "–" if value is None or math.isnan(value) else f"{value / 1024:,.1f}"


def bucket_ms(value: float) -> str:
    """A histogram bucket's upper bound in ms, as "≤ X"."""
    if math.isnan(value):
        return "–"
    return "> 1000" if math.isinf(value) else f"≤ {ms(value)}"


def median_of(runs: Sequence[Run], key: str) -> float:
    """The median of one figure over the runs (a missing figure counts as none)."""
    return median(float(run[key]) if run[key] is not None else math.nan for run in runs)


def relay_metric(runs: Sequence[Run], key: str) -> float:
    """The median of one of the relay's own /metrics deltas over the runs."""
    return median(float(run["relay_metrics"][key]) for run in runs)


def latency_cells(runs: Sequence[Run]) -> list[str]:
    """p50, p99, max, lost and duplicates / out-of-order: the medians every table shows."""
    return [
        ms(median_of(runs, "p50_ms")),
        ms(median_of(runs, "p99_ms")),
        ms(median_of(runs, "max_ms")),
        count(median_of(runs, "lost")),
        f"{count(median_of(runs, 'duplicates'))} / {count(median_of(runs, 'out_of_order'))}",
    ]


def runs_label(part: str, runs: Sequence[Run], index: int) -> str:
    """A note's label for run `index` of a part ("run N" only when there are several)."""
    return part + (f" run {index}" if len(runs) > 1 else "")


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    text_columns: int = 0,
    *,
    text_first: int = 0,
) -> list[str]:
    """A Markdown table, numbers right-aligned; the first `text_first` and the last
    `text_columns` columns left-aligned, as text."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(header)]
    first_text = len(header) - text_columns

    def is_text(i: int) -> bool:
        return i < text_first or i >= first_text

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if is_text(i) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ":" + "-" * (w + 1) if is_text(i) else "-" * (w + 1) + ":" for i, w in enumerate(widths)
    ]
    return [line(header), "|" + "|".join(rule) + "|", *(line(row) for row in rows)]


def _ratio(numerator: float, denominator: float) -> str:
    if math.isnan(numerator) or math.isnan(denominator) or denominator <= 0:
        return "–"
    return f"{numerator / denominator:.2f}×"


def ratio_line(label: str, runs: Sequence[Run], baseline: Sequence[Run]) -> str:
    """`label` = X.XX× of the medians' p99, with the per-run ratios when there are several."""
    p99 = median_of(runs, "p99_ms") if runs else math.nan
    p99_baseline = median_of(baseline, "p99_ms") if baseline else math.nan
    per_run = ""
    if len(baseline) > 1 and len(baseline) == len(runs):
        pairs = zip(baseline, runs, strict=True)
        per_run = " (runs: " + ", ".join(_ratio(r["p99_ms"], b["p99_ms"]) for b, r in pairs) + ")"
    return f"**{label} = {_ratio(p99, p99_baseline)}**{per_run}"
