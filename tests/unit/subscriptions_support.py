"""What the subscription test modules share: a command as the client sends it."""

from __future__ import annotations

from typing import Any

import orjson


def command(**fields: Any) -> bytes:
    return orjson.dumps(fields)
