"""Sums of stored metric values past the largest double: no value, never an exception."""

from __future__ import annotations

import math

from app.domain.metric_math import (
    Distribution,
    Sample,
    SeriesInput,
    Window,
    aggregate,
    evaluate,
    exact_sum,
)
from app.domain.metrics import GAUGE, HISTOGRAM, TEMPORALITY_DELTA

WINDOW = Window(start_s=1000, end_s=1299, step_s=100, fetch_from_s=1000)


def test_exact_sum_overflows_to_infinity_instead_of_raising() -> None:
    assert exact_sum([0.1, 0.2, 0.3]) == 0.6  # still exact where fsum is
    assert exact_sum([1.7e308, 1.7e308]) == math.inf
    assert aggregate([1.7e308, 1.7e308], "avg", 100) == math.inf


def test_steps_whose_value_overflows_are_left_out() -> None:
    huge = [Sample(1000, 1.7e308), Sample(1010, 1.7e308), Sample(1100, 1.0)]
    series = [
        SeriesInput((), GAUGE, 0, False, huge),
        SeriesInput((), GAUGE, 0, False, [Sample(1005, 1.7e308)]),
    ]
    for agg in ("sum", "avg"):
        assert evaluate(series, agg, WINDOW) == {(): [(1100, 1.0)]}


def test_histogram_sums_that_overflow_are_left_out() -> None:
    points = [Distribution(1000 + offset, None, 1, 1.7e308) for offset in (0, 10)]
    series = [SeriesInput((), HISTOGRAM, TEMPORALITY_DELTA, False, points)]
    assert evaluate(series, "sum", WINDOW) == {}
    assert evaluate(series, "count", WINDOW) == {(): [(1000, 2.0)]}
