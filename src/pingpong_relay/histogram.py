"""A log-bucketed histogram of latencies: quantiles within a fixed relative error (pure).

Its memory is bounded whatever values arrive, and histograms merge across time slots (the
statistics windows) and into rollups (their JSON form).
"""

from __future__ import annotations

import math
from typing import Any, Final

__all__ = [
    "BUCKETS_PER_DOUBLING",
    "BUCKET_RATIO",
    "MAX_BUCKETS",
    "MAX_MAGNITUDE",
    "MIN_MAGNITUDE",
    "RELATIVE_ERROR",
    "LogHistogram",
    "bucket_key",
]

BUCKETS_PER_DOUBLING: Final = 16
BUCKET_RATIO: Final = 2.0 ** (1.0 / BUCKETS_PER_DOUBLING)
# A bucket [r**i, r**(i+1)) reports the point whose relative distance to both edges is equal,
# so any value in it is reported within (r - 1) / (r + 1) ≈ 2.17 % of itself.
RELATIVE_ERROR: Final = (BUCKET_RATIO - 1.0) / (BUCKET_RATIO + 1.0)
# Magnitudes below MIN_MAGNITUDE share the zero bucket (reported as 0, absolute error < 0.01);
# above MAX_MAGNITUDE they share the top bucket. The finite key range is what bounds a
# histogram's size whatever values a bot sends (a seconds-for-milliseconds timestamp still
# lands well inside it).
MIN_MAGNITUDE: Final = 0.01
MAX_MAGNITUDE: Final = 1e15

_MIN_INDEX: Final = math.floor(math.log2(MIN_MAGNITUDE) * BUCKETS_PER_DOUBLING)
_MAX_INDEX: Final = math.floor(math.log2(MAX_MAGNITUDE) * BUCKETS_PER_DOUBLING)
# Magnitude bucket i has key i + _KEY_OFFSET ≥ 1 so that zero can be key 0 and a negative
# value can take the mirrored key: integer order is then value order.
_KEY_OFFSET: Final = 1 - _MIN_INDEX
_MIDPOINT: Final = 2.0 * BUCKET_RATIO / (1.0 + BUCKET_RATIO)
MAX_BUCKETS: Final = 2 * (_MAX_INDEX - _MIN_INDEX + 1) + 1


def _round3(value: float | None) -> float | None:
    # Figures as reports show them: to 3 decimals.
    return None if value is None else round(value, 3)


def bucket_key(value: float) -> int:
    """The histogram bucket of a finite value; keys sort in the order of their values."""
    magnitude = abs(value)
    if magnitude < MIN_MAGNITUDE:
        return 0
    # Clamped both ways: log2 may round a value just above MIN_MAGNITUDE one bucket low.
    index = math.floor(math.log2(magnitude) * BUCKETS_PER_DOUBLING)
    key = min(max(index, _MIN_INDEX), _MAX_INDEX) + _KEY_OFFSET
    return key if value > 0 else -key


def _bucket_value(key: int) -> float:
    if key == 0:
        return 0.0
    value = BUCKET_RATIO ** (abs(key) - _KEY_OFFSET) * _MIDPOINT
    return value if key > 0 else -value


class LogHistogram:
    """A sparse, mergeable histogram of floats in log-spaced buckets of ratio BUCKET_RATIO.

    Count, sum, min, max and the number of negative values are exact. A quantile is within
    RELATIVE_ERROR (≈ 2.17 %) of the exact nearest-rank quantile when that value's magnitude
    lies in [MIN_MAGNITUDE, MAX_MAGNITUDE]; smaller magnitudes report as 0. Non-finite
    values are ignored. At most MAX_BUCKETS buckets, whatever is added.
    """

    __slots__ = ("_buckets", "_count", "_max", "_min", "_negative_count", "_sum")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self._count = 0
        self._negative_count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def add(self, value: float) -> None:
        """Counts one value; a non-finite one (NaN, ±inf) is ignored."""
        if math.isfinite(value):
            self.insert_keyed(value, bucket_key(value))

    def insert_keyed(self, value: float, key: int) -> None:
        """Adds `value` whose bucket `key` the caller computed (once for several histograms)."""
        buckets = self._buckets
        buckets[key] = buckets.get(key, 0) + 1
        self._count += 1
        self._sum += value
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        if value < 0.0:
            self._negative_count += 1

    def merge(self, other: LogHistogram) -> None:
        """Adds every value `other` counted, as if each had been added here (exactly)."""
        buckets = self._buckets
        for key, count in other._buckets.items():
            buckets[key] = buckets.get(key, 0) + count
        self._count += other._count
        self._negative_count += other._negative_count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def clear(self) -> None:
        """Forgets every value, keeping the object for reuse (a recycled time slot)."""
        self._buckets.clear()
        self._count = 0
        self._negative_count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (the ⌈q·n⌉-th smallest value, at least the 1st)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile must be in [0, 1], not {q!r}")
        if self._count == 0:
            return None
        rank = max(1, math.ceil(q * self._count))
        seen = 0
        buckets = self._buckets
        for key in sorted(buckets):
            seen += buckets[key]
            if seen >= rank:
                # The exact answer lies in [min, max], so clamping only brings us closer.
                return min(max(_bucket_value(key), self._min), self._max)
        raise AssertionError("bucket counts do not add up to count")  # pragma: no cover

    def bucket_count(self) -> int:
        """Buckets in use, a measure of memory (at most MAX_BUCKETS)."""
        return len(self._buckets)

    def describe(
        self, quantiles: tuple[float, ...] = (0.5, 0.95, 0.99), *, rounded: bool = True
    ) -> dict[str, Any]:
        """min, mean, the pNN quantiles and max (None when empty), to 3 decimals if rounded."""
        shown = _round3 if rounded else (lambda value: value)
        body: dict[str, Any] = {"min": shown(self.min), "mean": shown(self.mean)}
        for q in quantiles:
            body[f"p{q * 100:g}"] = shown(self.quantile(q))
        body["max"] = shown(self.max)
        return body

    def to_json(self) -> dict[str, Any]:
        """A compact, exact form for storage (rollups); `from_json` reads it back."""
        return {
            "b": {str(key): count for key, count in self._buckets.items()},
            "n": self._count,
            # Infinite only past what the relay accepts (a sum of values near 1e308): JSON
            # has no infinity, so it says "unknown" rather than let an encoder choose.
            "s": self._sum if math.isfinite(self._sum) else None,
            "lo": self._min if self._count else None,
            "hi": self._max if self._count else None,
            "neg": self._negative_count,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> LogHistogram:
        """The histogram `to_json` stored; KeyError or ValueError when `body` is not one."""
        histogram = cls()
        histogram._buckets = {int(key): int(count) for key, count in body["b"].items()}
        histogram._count = int(body["n"])
        total = body["s"]
        histogram._sum = math.nan if total is None else float(total)
        if histogram._count:
            histogram._min = float(body["lo"])
            histogram._max = float(body["hi"])
        histogram._negative_count = int(body["neg"])
        return histogram

    @property
    def count(self) -> int:
        """How many values were counted."""
        return self._count

    @property
    def negative_count(self) -> int:
        """How many of the values were below zero (a transit time under clock skew)."""
        return self._negative_count

    @property
    def mean(self) -> float | None:
        """The mean of the values, kept within [min, max]; None when empty."""
        if self._count == 0:
            return None
        mean = self._sum / self._count
        if math.isnan(mean):
            # The sum is unknown: +inf and -inf met, or stored as such. Only the range is
            # known, and its middle cannot overflow when the range holds both signs.
            return self._min / 2 + self._max / 2
        # Clamped: a sum of huge values can round or overflow past what the values allow.
        return min(max(mean, self._min), self._max)

    @property
    def min(self) -> float | None:
        """The smallest value counted, exactly; None when empty."""
        return self._min if self._count else None

    @property
    def max(self) -> float | None:
        """The largest value counted, exactly; None when empty."""
        return self._max if self._count else None
