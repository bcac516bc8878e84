"""Alert rules: a latency percentile over a window, and silence; from flags or a TOML file (pure).

Each rule is checked as it is built, with an error that names the rule and the field.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Final, Literal, NoReturn, TypeAlias

from pingpong_relay.defaults import WINDOW_NAMES
from pingpong_relay.parsing import parse_duration

__all__ = [
    "REPORT_RULES",
    "RULE_KINDS",
    "TOML_RULE_KINDS",
    "LatencyRule",
    "ReportRule",
    "Rule",
    "RuleKind",
    "SilenceRule",
    "default_rules",
    "format_s",
    "load_rules",
    "percentile_label",
]

RuleKind: TypeAlias = Literal["latency", "silence", "report"]
RULE_KINDS: Final = ("latency", "silence", "report")
# The kinds a rules file may declare; the report rules are built in (REPORT_RULES).
TOML_RULE_KINDS: Final = ("latency", "silence")


def format_s(seconds: float) -> str:
    """Seconds for a sentence: 12.5 -> \"12\" (whole above ten), 1.50 -> \"1.5\"."""
    # Whole seconds read best in a sentence; tenths only matter below ten.
    if abs(seconds) >= 10:
        return f"{seconds:.0f}"
    return f"{seconds:.1f}".rstrip("0").rstrip(".")


def percentile_label(percentile: float) -> str:
    """0.95 -> "p95", 0.999 -> "p99.9"."""
    return f"p{percentile * 100:g}"


# --- rules ---------------------------------------------------------------------------------


def _check_duration(owner: str, name: str, value: float, *, positive: bool = False) -> None:
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{owner}: {name} must be a finite number of seconds {bound}, not {value!r}"
        )


def _check_common(owner: str, name: str, for_s: float, bots: tuple[str, ...]) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{owner}: name must be a non-empty string, not {name!r}")
    _check_duration(owner, "for_s", for_s)
    for pattern in bots:
        if not isinstance(pattern, str) or not pattern:
            raise ValueError(f"{owner}: bots must be non-empty patterns, not {pattern!r}")


def _matches(patterns: tuple[str, ...], bot: str) -> bool:
    # fnmatchcase, not fnmatch: bot ids are case-sensitive on every platform.
    return not patterns or any(fnmatchcase(bot, pattern) for pattern in patterns)


@dataclass(frozen=True, slots=True)
class LatencyRule:
    """Alert while a bot's latency quantile over `window` is above `threshold_ms`."""

    kind: ClassVar[RuleKind] = "latency"

    name: str
    window: str = "1m"
    percentile: float = 0.95
    threshold_ms: float = 500.0
    for_s: float = 30.0
    bots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        owner = f"latency rule {self.name!r}"
        object.__setattr__(self, "bots", tuple(self.bots))
        _check_common(owner, self.name, self.for_s, self.bots)
        if self.window not in WINDOW_NAMES:
            raise ValueError(
                f"{owner}: window must be one of {', '.join(WINDOW_NAMES)}, not {self.window!r}"
            )
        if not 0 < self.percentile <= 1:
            raise ValueError(f"{owner}: percentile must be in (0, 1], not {self.percentile!r}")
        if not (math.isfinite(self.threshold_ms) and self.threshold_ms >= 0):
            raise ValueError(
                f"{owner}: threshold_ms must be a finite number >= 0, not {self.threshold_ms!r}"
            )

    def applies_to(self, bot: str) -> bool:
        """Whether the rule judges `bot`: it matches one of `bots` (every bot, with none)."""
        return _matches(self.bots, bot)


@dataclass(frozen=True, slots=True)
class SilenceRule:
    """Alert while a bot has sent nothing for max(timeout_s, interval_factor × its interval)."""

    kind: ClassVar[RuleKind] = "silence"

    name: str
    timeout_s: float = 30.0
    interval_factor: float = 3.0
    for_s: float = 30.0
    bots: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        owner = f"silence rule {self.name!r}"
        object.__setattr__(self, "bots", tuple(self.bots))
        _check_common(owner, self.name, self.for_s, self.bots)
        _check_duration(owner, "timeout_s", self.timeout_s, positive=True)
        if not (math.isfinite(self.interval_factor) and self.interval_factor >= 0):
            raise ValueError(
                f"{owner}: interval_factor must be a finite number >= 0, "
                f"not {self.interval_factor!r}"
            )

    def applies_to(self, bot: str) -> bool:
        """Whether the rule judges `bot`: it matches one of `bots` (every bot, with none)."""
        return _matches(self.bots, bot)

    def timeout_for(self, typical_interval_s: float | None) -> float:
        """The effective timeout: a bot that publishes every 20 s is not silent after 30 s."""
        if typical_interval_s is None:
            return self.timeout_s
        return max(self.timeout_s, self.interval_factor * typical_interval_s)


@dataclass(frozen=True, slots=True)
class ReportRule:
    """Alert while a bot's last message reported it `level` (down or degraded) itself: a
    push with status=down, a failed cron job, a poller's verdict. Built in, for every bot,
    and at once (no `for`)."""

    kind: ClassVar[RuleKind] = "report"

    name: str
    level: Literal["down", "degraded"]
    for_s: float = 0.0
    bots: tuple[str, ...] = ()

    def applies_to(self, bot: str) -> bool:
        """Every bot: a bot that says it is down is down."""
        return True


# Added to whatever rules the flags or the rules file give (app.rules_setup).
REPORT_RULES: Final = (
    ReportRule(name="reported-down", level="down"),
    ReportRule(name="reported-degraded", level="degraded"),
)

Rule: TypeAlias = LatencyRule | SilenceRule | ReportRule


def default_rules(
    latency_threshold_ms: float = 500.0,
    latency_window: str = "1m",
    latency_percentile: float = 0.95,
    latency_for_s: float = 30.0,
    silence_timeout_s: float = 30.0,
    silence_for_s: float = 30.0,
) -> list[Rule]:
    """One latency rule named "latency" and one silence rule named "silence", for every bot."""
    return [
        LatencyRule(
            name="latency",
            window=latency_window,
            percentile=latency_percentile,
            threshold_ms=latency_threshold_ms,
            for_s=latency_for_s,
        ),
        SilenceRule(name="silence", timeout_s=silence_timeout_s, for_s=silence_for_s),
    ]


# --- loading rules from TOML ---------------------------------------------------------------


def _non_negative(value: object) -> float | None:
    """The value as a float if it is a finite number >= 0, else None."""
    # TOML booleans are Python bools, and bool is an int subclass; `true` is not a number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _toml_duration(value: object) -> float:
    if isinstance(value, str):
        return parse_duration(value)
    seconds = _non_negative(value)
    if seconds is None:
        raise ValueError(
            f'must be a duration like "30s" or a number of seconds >= 0, not {value!r}'
        )
    return seconds


def _toml_timeout(value: object) -> float:
    seconds = _toml_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0 s, not {value!r}")
    return seconds


def _toml_number(value: object) -> float:
    number = _non_negative(value)
    if number is None:
        raise ValueError(f"must be a number >= 0, not {value!r}")
    return number


def _toml_window(value: object) -> str:
    if isinstance(value, str) and value in WINDOW_NAMES:
        return value
    raise ValueError(f"must be one of {', '.join(map(repr, WINDOW_NAMES))}, not {value!r}")


_PERCENTILE_NAME: Final = re.compile(r"p(\d+(?:\.\d+)?)")


def _toml_percentile(value: object) -> float:
    fraction: float | None
    if isinstance(value, str) and (match := _PERCENTILE_NAME.fullmatch(value.strip().lower())):
        # Decimal keeps "p99.9" at exactly 0.999 rather than 0.9990000000000001.
        fraction = float(Decimal(match[1]) / 100)
    else:
        fraction = _non_negative(value)
    if fraction is None:
        raise ValueError(f'must be like "p99" or a fraction like 0.99, not {value!r}')
    if not 0 < fraction <= 1:
        raise ValueError(f'must be in (0, 1] (0.99) or "p1".."p100", not {value!r}')
    return fraction


def _toml_patterns(value: object) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    raise ValueError(f'must be a list of bot id patterns like ["bot:gate*"], not {value!r}')


# TOML key -> (dataclass field, converter), per rule kind.
_Field: TypeAlias = tuple[str, Callable[[object], Any]]
_COMMON_KEYS: Final[dict[str, _Field]] = {
    "for": ("for_s", _toml_duration),
    "bots": ("bots", _toml_patterns),
}
_KEYS: Final[dict[str, dict[str, _Field]]] = {
    "latency": {
        "window": ("window", _toml_window),
        "percentile": ("percentile", _toml_percentile),
        "threshold_ms": ("threshold_ms", _toml_number),
        **_COMMON_KEYS,
    },
    "silence": {
        "timeout": ("timeout_s", _toml_timeout),
        "interval_factor": ("interval_factor", _toml_number),
        **_COMMON_KEYS,
    },
}


def _rule_from_table(index: int, table: dict[str, Any]) -> Rule:
    name = table.get("name")
    where = f"rule {index}" + (f" ({name!r})" if isinstance(name, str) and name else "")

    def fail(key: str, problem: str) -> NoReturn:
        raise ValueError(f"{where}: key {key!r} {problem}")

    if "name" not in table:
        fail("name", "is missing")
    if not isinstance(name, str) or not name.strip():
        fail("name", f"must be a non-empty string, not {name!r}")
    if "kind" not in table:
        fail("kind", 'is missing; it is "latency" or "silence"')
    kind = table["kind"]
    if kind not in TOML_RULE_KINDS:
        fail("kind", f'must be "latency" or "silence", not {kind!r}')
    keys = _KEYS[kind]
    values: dict[str, Any] = {"name": name}
    for key, raw in table.items():
        if key in ("name", "kind"):
            continue
        if key not in keys:
            fail(key, f"is not known for a {kind} rule; use {', '.join(['name', 'kind', *keys])}")
        attribute, convert = keys[key]
        try:
            values[attribute] = convert(raw)
        except ValueError as exc:
            fail(key, str(exc))
    try:
        return LatencyRule(**values) if kind == "latency" else SilenceRule(**values)
    except ValueError as exc:
        # Only reachable for checks the converters do not repeat; still say which rule.
        raise ValueError(f"{where}: {exc}") from None


def load_rules(text: str) -> list[Rule]:
    """Rules from TOML `[[rule]]` tables; ValueError names the rule and key that are wrong."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"alert rules are not valid TOML: {exc}") from None
    for key in document:
        if key != "rule":
            raise ValueError(f"unknown top-level key {key!r}; write each rule as a [[rule]] table")
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ValueError("key 'rule' must be an array of tables; write each rule as [[rule]]")
    rules: list[Rule] = []
    first_index: dict[str, int] = {}
    for index, table in enumerate(tables, start=1):
        rule = _rule_from_table(index, table)
        if rule.name in first_index:
            raise ValueError(
                f"rule {index} ({rule.name!r}): key 'name' repeats the name of "
                f"rule {first_index[rule.name]}; names must be unique"
            )
        first_index[rule.name] = index
        rules.append(rule)
    return rules
