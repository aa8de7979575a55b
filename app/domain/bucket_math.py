"""Quantiles from buckets: explicit bounds (as `histogram_quantile`) and exponential scales.

Explicit-bounds quantiles follow Prometheus `histogram_quantile`: linear interpolation in
the bucket holding the rank; the first bucket starts at 0 when its bound is positive
(else its bound is returned); a rank in the +Inf bucket returns the last finite bound.
Series with different bounds merge onto the union of the bounds (`rebucket`), each finite
bucket's count split by width. Exponential buckets at scale s have base 2**(2**-s); bucket
i covers (base**i, base**(i+1)]; quantiles interpolate log-linearly inside a bucket and
linearly inside the zero bucket; parts of different scales merge at the smallest scale.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class Exponential:
    """Exponential buckets: index i at `scale` covers (base**i, base**(i+1)], base 2**2**-scale."""

    scale: int
    zero_count: float = 0.0
    zero_threshold: float = 0.0
    positive: dict[int, float] = field(default_factory=dict)
    negative: dict[int, float] = field(default_factory=dict)


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """Prometheus `histogram_quantile` over non-cumulative bucket counts (len(bounds) + 1)."""
    total = math.fsum(counts)
    if not bounds or total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for index, bound in enumerate(bounds):
        count = counts[index]
        if count > 0 and cumulative + count >= rank:
            if index == 0 and bound <= 0:
                return bound
            lower = bounds[index - 1] if index else 0.0
            return lower + (bound - lower) * (rank - cumulative) / count
        cumulative += count
    return bounds[-1]


def rebucket(
    bounds: Sequence[float], counts: Sequence[float], union: Sequence[float]
) -> list[float]:
    """Counts on `bounds` moved onto `union` (a superset), splitting buckets by width."""
    moved = [0.0] * (len(union) + 1)
    position = {bound: index for index, bound in enumerate(union)}
    for index, count in enumerate(counts):
        if not count:
            continue
        if index == len(bounds):  # above the last bound: just above it in the union
            moved[position[bounds[-1]] + 1 if bounds else len(union)] += count
            continue
        upper = bounds[index]
        if index == 0 and upper <= 0:
            moved[position[upper]] += count
            continue
        lower = bounds[index - 1] if index else 0.0
        target = bisect_right(union, lower)
        start = lower
        while True:
            piece_end = min(union[target], upper)
            moved[target] += count * (piece_end - start) / (upper - lower)
            if piece_end >= upper:
                break
            start, target = piece_end, target + 1
    return moved


def merge_buckets(
    parts: list[tuple[tuple[float, ...], Sequence[float]]],
) -> tuple[tuple[float, ...], list[float]] | None:
    if not parts:
        return None
    bounds = parts[0][0]
    if any(other != bounds for other, _ in parts):
        bounds = tuple(sorted({bound for other, _ in parts for bound in other}))
        parts = [(bounds, rebucket(other, counts, bounds)) for other, counts in parts]
    merged = [0.0] * (len(bounds) + 1)
    for _, counts in parts:
        for index, count in enumerate(counts):
            merged[index] += count
    return bounds, merged


# --- exponential histograms ----------------------------------------------------------


def _power(scale: int, exponent: float) -> float:
    """base**exponent = 2**(exponent * 2**-scale); inf past the float range."""
    try:
        return 2.0 ** (exponent / 2.0**scale)
    except OverflowError:
        return math.inf


def downscale(buckets: Exponential, scale: int) -> Exponential:
    """The same buckets at a smaller scale: index i becomes i >> (old - new scale)."""
    shift = buckets.scale - scale
    if shift <= 0:
        return buckets
    sides: list[dict[int, float]] = [{}, {}]
    for side, source in zip(sides, (buckets.positive, buckets.negative), strict=True):
        for index, count in source.items():
            side[index >> shift] = side.get(index >> shift, 0.0) + count
    return Exponential(scale, buckets.zero_count, buckets.zero_threshold, *sides)


def merge_exponential(parts: Sequence[Exponential]) -> Exponential | None:
    if not parts:
        return None
    scale = min(part.scale for part in parts)
    merged = Exponential(scale, zero_threshold=max(part.zero_threshold for part in parts))
    for part in parts:
        part = downscale(part, scale)
        merged.zero_count += part.zero_count
        for side, source in ((merged.positive, part.positive), (merged.negative, part.negative)):
            for index, count in source.items():
                side[index] = side.get(index, 0.0) + count
    if merged.zero_threshold > 0:  # buckets now inside the widest zero bucket join it
        for side in (merged.positive, merged.negative):
            for index in [i for i in side if _power(scale, i + 1) <= merged.zero_threshold]:
                merged.zero_count += side.pop(index)
    return merged


def exponential_quantile(q: float, buckets: Exponential) -> float | None:
    """Quantile over negative buckets (most negative first), the zero bucket, positive ones."""
    negative = [(i, c) for i, c in sorted(buckets.negative.items(), reverse=True) if c > 0]
    positive = [(i, c) for i, c in sorted(buckets.positive.items()) if c > 0]
    total = (
        buckets.zero_count + math.fsum(c for _, c in negative) + math.fsum(c for _, c in positive)
    )
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for index, count in negative:
        if cumulative + count >= rank:
            return -_power(buckets.scale, index + 1 - (rank - cumulative) / count)
        cumulative += count
    zero = buckets.zero_count
    if zero > 0:
        if cumulative + zero >= rank:
            threshold = buckets.zero_threshold
            lower = -threshold if negative else 0.0
            upper = threshold if positive or not negative else 0.0
            return lower + (upper - lower) * (rank - cumulative) / zero
        cumulative += zero
    for index, count in positive:
        if cumulative + count >= rank:
            return _power(buckets.scale, index + (rank - cumulative) / count)
        cumulative += count
    return _power(buckets.scale, positive[-1][0] + 1) if positive else 0.0


# --- distributions -------------------------------------------------------------------
