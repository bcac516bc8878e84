"""Which Chromium the browser tests drive: the harness's, which the dashboard benchmark uses too."""

from __future__ import annotations

from harness.chromium import CHROMIUM, CHROMIUM_ARGS, launch, missing

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "launch", "missing"]
