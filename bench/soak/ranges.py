"""Ranges of seqs: sorted, disjoint, half-open [a, b)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def merge_ranges(ranges: Iterable[Sequence[int]]) -> list[list[int]]:
    """Sorted, disjoint ranges covering the same seqs."""
    out: list[list[int]] = []
    for a, b in sorted((int(r[0]), int(r[1])) for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def subtract_ranges(ranges: list[list[int]], cuts: list[list[int]]) -> list[list[int]]:
    """`ranges` minus `cuts`, both merged."""
    out: list[list[int]] = []
    j = 0
    for a, b in ranges:
        while j < len(cuts) and cuts[j][1] <= a:
            j += 1
        k = j
        start = a
        while k < len(cuts) and cuts[k][0] < b:
            if cuts[k][0] > start:
                out.append([start, cuts[k][0]])
            start = max(start, cuts[k][1])
            k += 1
        if start < b:
            out.append([start, b])
    return out


def range_count(ranges: Iterable[Sequence[int]]) -> int:
    """How many seqs the ranges hold."""
    return sum(b - a for a, b in ranges)
