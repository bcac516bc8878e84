"""The Grafana dashboard under deploy/grafana read as data: its panels, each query they run,
its template variables, and a query with the variables filled in as Grafana would."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = ["DASHBOARD", "PanelQuery", "expand", "load_dashboard", "panel_queries", "panels"]

# Pure (no process, no I/O library), so the unit tests read it too.
DASHBOARD: Final = (
    Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "pingpong-relay.json"
)

# $name, ${name} and ${name:format}; Grafana's own variables ($__rate_interval) included.
_VARIABLE: Final = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    """One PromQL query of one panel: which panel, its refId, the expression as written."""

    panel_id: int
    title: str
    ref_id: str
    expr: str
    instant: bool


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard's JSON model."""
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows left out, a collapsed row's panels included)."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """Every query of every panel, in the dashboard's order."""
    return [
        PanelQuery(
            panel["id"],
            panel["title"],
            target["refId"],
            target["expr"],
            target.get("instant", False),
        )
        for panel in panels(dashboard)
        for target in panel["targets"]
    ]


def expand(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with every variable replaced by its value in `values`; KeyError names a
    variable that `values` lacks, so a new one cannot slip through untested."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr}")
        return values[name]

    return _VARIABLE.sub(value, expr)
