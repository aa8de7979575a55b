"""The latency sketch stays within 1% of exact quantiles and merges losslessly."""

from __future__ import annotations

import math
import random

import pytest

from app.domain import sketch


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_within_one_percent(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(5, 1.5) for _ in range(5000)]
    buckets: dict[int, int] = {}
    for value in values:
        sketch.add(buckets, value)
    estimate = sketch.quantile(buckets, q)
    exact = _exact(values, q)
    assert estimate is not None
    assert abs(estimate - exact) <= 0.01 * exact


def test_merging_minutes_equals_one_sketch_and_beats_averaging() -> None:
    rng = random.Random(9)
    fast = [rng.uniform(10, 20) for _ in range(990)]
    slow = [rng.uniform(5000, 6000) for _ in range(10)]
    minute_one: dict[int, int] = {}
    minute_two: dict[int, int] = {}
    whole: dict[int, int] = {}
    for value in fast:
        sketch.add(minute_one, value)
        sketch.add(whole, value)
    for value in slow:
        sketch.add(minute_two, value)
        sketch.add(whole, value)
    merged = dict(minute_one)
    sketch.merge(merged, minute_two)
    assert merged == whole
    p99 = sketch.quantile(merged, 0.99)
    exact = _exact(fast + slow, 0.99)
    assert abs(p99 - exact) <= 0.01 * exact
    # The average of the two minutes' p99s would be wildly off; the merge is not.
    averaged = (sketch.quantile(minute_one, 0.99) + sketch.quantile(minute_two, 0.99)) / 2
    assert abs(averaged - exact) > 0.1 * exact


def test_edges() -> None:
    assert sketch.quantile({}, 0.5) is None
    buckets: dict[int, int] = {}
    sketch.add(buckets, 0.0)
    sketch.add(buckets, 0.0005)
    assert sketch.quantile(buckets, 1.0) == 0.0
    indexes, counts = sketch.to_arrays({5: 2, -3: 1})
    assert (indexes, counts) == ([-3, 5], [1, 2])
    for value in (0.002, 1.0, 123.4, 98765.0):
        represented = sketch.bucket_value(sketch.bucket_index(value))
        assert abs(represented - value) <= 0.01 * value
