"""The shapes the core records its numbers into (counter, gauge, histogram, labelled series).

The core counts without knowing who keeps count: `telemetry.metrics` binds these shapes to
Prometheus, and unit tests can hand in anything that has the same methods.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

__all__ = ["Counter", "Gauge", "Histogram", "Labelled"]

_Child_co = TypeVar("_Child_co", covariant=True)


class Counter(Protocol):
    """A number that only goes up."""

    def inc(self, amount: float = 1) -> None:
        """Adds `amount`."""


class Gauge(Protocol):
    """A number that is set."""

    def set(self, value: float) -> None:
        """Sets the value."""


class Histogram(Protocol):
    """A distribution of observed values."""

    def observe(self, amount: float) -> None:
        """Records one value."""


class Labelled(Protocol[_Child_co]):
    """A family of series told apart by label values (a bot, a rule)."""

    def labels(self, *values: Any) -> _Child_co:
        """The series for these label values, created when first named."""

    def remove(self, *values: Any) -> None:
        """Drops the series for these label values; KeyError if there is none."""
