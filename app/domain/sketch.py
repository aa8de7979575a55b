"""Mergeable latency sketches: log-scale buckets with 1% relative accuracy, as DDSketch does.

A value x > 0 falls in bucket i = ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a); the
bucket is represented by 2 * gamma**i / (gamma + 1), which is within a relative error `a`
of every value in it (Masson, Rim, Lee: "DDSketch", VLDB 2019). Sketches of different
minutes merge by adding counts per bucket, so a percentile over any window is computed
from per-minute sketches without ever averaging percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
# Public so SQL can compute the same bucket index (app/query/span_stats.py).
LOG_GAMMA = math.log(GAMMA)
# Durations at or below a microsecond (in ms) share one bucket; nothing meaningful is lost.
MIN_VALUE_MS = 0.001
ZERO_INDEX = math.ceil(math.log(MIN_VALUE_MS) / LOG_GAMMA) - 1


def bucket_index(value_ms: float) -> int:
    if value_ms <= MIN_VALUE_MS:
        return ZERO_INDEX
    return math.ceil(math.log(value_ms) / LOG_GAMMA)


def bucket_value(index: int) -> float:
    if index <= ZERO_INDEX:
        return 0.0
    return 2 * GAMMA**index / (GAMMA + 1)


def add(buckets: dict[int, int], value_ms: float, count: int = 1) -> None:
    index = bucket_index(value_ms)
    buckets[index] = buckets.get(index, 0) + count


def merge(into: dict[int, int], other: Mapping[int, int] | Iterable[tuple[int, int]]) -> None:
    pairs = other.items() if isinstance(other, Mapping) else other
    for index, count in pairs:
        into[index] = into.get(index, 0) + count


def quantile(buckets: Mapping[int, int], q: float) -> float | None:
    """The q-quantile (0..1) by DDSketch's rank rule, or None for an empty sketch.

    The answer is within 1% of the exact value of rank floor(q * (n - 1)) in sorted order.
    """
    total = sum(buckets.values())
    if total <= 0:
        return None
    rank = q * (total - 1)
    seen = 0
    for index in sorted(buckets):
        seen += buckets[index]
        if seen > rank:
            return bucket_value(index)
    return bucket_value(max(buckets))


def to_arrays(buckets: Mapping[int, int]) -> tuple[list[int], list[int]]:
    """Sorted (indexes, counts) — the form stored in int[] / bigint[] columns."""
    indexes = sorted(buckets)
    return indexes, [buckets[index] for index in indexes]
