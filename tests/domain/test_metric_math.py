"""Metric query math without a database: steps, resets, aggregation and bucket quantiles."""

from __future__ import annotations

import math

import pytest

from app.domain.bucket_math import (
    Exponential,
    downscale,
    exponential_quantile,
    histogram_quantile,
    merge_exponential,
    rebucket,
)
from app.domain.metric_math import (
    Distribution,
    Sample,
    SeriesInput,
    Window,
    aggregate,
    counter_increases,
    default_step_s,
    distribution_increase,
    evaluate,
    group_labels,
    merge_distributions,
    per_step,
    step_count,
    step_start,
    unsupported,
)
from app.domain.metrics import (
    EXPONENTIAL_HISTOGRAM,
    GAUGE,
    HISTOGRAM,
    SUM,
    SUMMARY,
    TEMPORALITY_CUMULATIVE,
    TEMPORALITY_DELTA,
)

WINDOW = Window(start_s=1000, end_s=1299, step_s=100, fetch_from_s=700)


def _series(kind: str, points: list, labels=(), temporality=TEMPORALITY_CUMULATIVE, mono=True):
    return SeriesInput(tuple(labels), kind, temporality, mono, points)


# --- steps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_s", "step_s"),
    [
        (0, 1),
        (59, 1),
        (3600, 60),
        (3601, 120),
        (6 * 3600, 600),
        (86400, 1800),
        (400 * 86400, 7 * 86400),
    ],
)
def test_default_step_is_a_round_duration_near_a_sixtieth(span_s: float, step_s: int) -> None:
    assert default_step_s(span_s) == step_s


def test_steps_align_to_multiples_of_the_step_since_the_epoch() -> None:
    assert step_start(1234.5, 60) == 1200
    assert step_start(1200, 60) == 1200
    assert step_count(1200, 1200, 60) == 1
    assert step_count(1199, 1201, 60) == 2
    assert step_count(1000, 1299.9, 100) == 3


# --- counters ------------------------------------------------------------------------


def test_counter_increases_empty_and_single_point() -> None:
    assert counter_increases([], 0) == []
    assert counter_increases([Sample(800, 5.0)], 700) == []  # a baseline only
    # A counter that began inside the fetched range counts from zero.
    assert counter_increases([Sample(800, 5.0, start_time_s=750)], 700) == [(800, 5.0)]
    # One that began before it did not: its value includes earlier increases.
    assert counter_increases([Sample(800, 5.0, start_time_s=600)], 700) == []


def test_counter_reset_by_a_drop_counts_the_new_value_from_zero() -> None:
    samples = [Sample(1000, 10.0), Sample(1010, 15.0), Sample(1020, 3.0), Sample(1030, 8.0)]
    assert counter_increases(samples, 0) == [(1010, 5.0), (1020, 3.0), (1030, 5.0)]


def test_counter_reset_at_the_first_point_after_the_baseline() -> None:
    samples = [Sample(900, 100.0), Sample(1010, 4.0)]
    assert counter_increases(samples, 700) == [(1010, 4.0)]


def test_counter_restart_is_a_new_start_time_even_when_the_value_grew() -> None:
    samples = [
        Sample(1000, 10.0, start_time_s=500),
        Sample(1010, 12.0, start_time_s=500),
        Sample(1020, 30.0, start_time_s=1015),
        Sample(1030, 31.0, start_time_s=1015),
    ]
    assert counter_increases(samples, 700) == [(1010, 2.0), (1020, 30.0), (1030, 1.0)]


def test_counter_skips_nan_readings() -> None:
    samples = [Sample(1000, 1.0), Sample(1010, math.nan), Sample(1020, 4.0)]
    assert counter_increases(samples, 0) == [(1020, 3.0)]


def test_per_step_last_or_sum_within_the_window() -> None:
    timed = [(900, 1.0), (1000, 2.0), (1050, 3.0), (1100, math.inf), (1150, 4.0), (1300, 9.0)]
    assert per_step(timed, WINDOW, last=True) == {1000: 3.0, 1100: 4.0}
    assert per_step(timed, WINDOW, last=False) == {1000: 5.0, 1100: 4.0}


def test_aggregate_across_series() -> None:
    values = [1.0, 2.0, 6.0]
    expected = {"sum": 9.0, "avg": 3.0, "min": 1.0, "max": 6.0, "count": 3.0, "rate": 0.09}
    for agg, value in expected.items():
        assert aggregate(values, agg, 100) == pytest.approx(value)
    assert aggregate([], "sum", 100) is None


# --- explicit-bounds histograms ------------------------------------------------------


def test_histogram_quantile_interpolates_linearly_in_the_bucket() -> None:
    bounds, counts = [1.0, 2.0, 4.0], [2.0, 2.0, 4.0, 0.0]
    # p50: rank 4 ends bucket (1, 2]: 1 + (2 - 1) * (4 - 2) / 2
    assert histogram_quantile(0.5, bounds, counts) == pytest.approx(2.0)
    # p90: rank 7.2 in (2, 4]: 2 + 2 * (7.2 - 4) / 4
    assert histogram_quantile(0.9, bounds, counts) == pytest.approx(3.6)


def test_histogram_quantile_edges() -> None:
    assert histogram_quantile(0.5, [1.0], [4.0, 0.0]) == pytest.approx(0.5)  # from 0
    assert histogram_quantile(0.5, [-1.0, 0.0], [3.0, 0.0, 0.0]) == -1.0  # bound <= 0
    assert histogram_quantile(0.99, [1.0, 2.0], [1.0, 0.0, 5.0]) == 2.0  # +Inf: last bound
    assert histogram_quantile(0.5, [], [5.0]) is None  # only +Inf
    assert histogram_quantile(0.5, [1.0], [0.0, 0.0]) is None  # empty


def test_histogram_quantile_on_a_bucket_edge_before_empty_buckets() -> None:
    # Prometheus picks the first bucket whose cumulative count reaches the rank. A rank that
    # ends a bucket exactly is that bucket's upper bound, even when only empty buckets (or
    # +Inf) follow: not the next non-empty bucket's start, not the last bound.
    bounds, counts = [1.0, 2.0, 4.0, 8.0], [1.0, 1.0, 0.0, 0.0, 2.0]
    assert histogram_quantile(0.5, bounds, counts) == 2.0  # rank 2 = end of (1, 2]
    assert histogram_quantile(0.25, bounds, counts) == 1.0  # rank 1 = end of (0, 1]
    assert histogram_quantile(1.0, [1.0, 2.0, 4.0], [0.0, 3.0, 0.0, 0.0]) == 2.0


def test_rebucket_splits_by_width_and_keeps_overflow_above_the_last_bound() -> None:
    assert rebucket([0.0, 10.0], [0.0, 10.0, 0.0], [0.0, 5.0, 10.0]) == [0.0, 5.0, 5.0, 0.0]
    assert rebucket([10.0], [10.0, 0.0], [5.0, 10.0]) == [5.0, 5.0, 0.0]
    assert rebucket([10.0], [0.0, 4.0], [10.0, 20.0]) == [0.0, 4.0, 0.0]
    assert rebucket([], [3.0], [1.0]) == [0.0, 3.0]


def test_merge_with_different_bounds_uses_their_union() -> None:
    first = Distribution(count=4, sum=10.0, bounds=(10.0,), bucket_counts=[4.0, 0.0])
    second = Distribution(count=4, sum=30.0, bounds=(5.0, 10.0), bucket_counts=[0.0, 4.0, 0.0])
    merged = merge_distributions([first, second])
    assert merged.count == 8 and merged.sum == 40.0
    assert merged.bounds == (5.0, 10.0)
    assert merged.bucket_counts == [2.0, 6.0, 0.0]
    # p50: rank 4 in (5, 10]: 5 + 5 * (4 - 2) / 6
    assert histogram_quantile(0.5, merged.bounds, merged.bucket_counts) == pytest.approx(
        5 + 5 * 2 / 6
    )


def test_merge_keeps_sum_unknown_when_one_part_lacks_it() -> None:
    assert merge_distributions([Distribution(count=1, sum=None), Distribution(count=1)]).sum is None


def test_cumulative_histogram_increase_and_resets() -> None:
    bounds = (1.0, 2.0)
    before = Distribution(10, 5, count=3, sum=3.0, bounds=bounds, bucket_counts=[1.0, 1.0, 1.0])
    after = Distribution(20, 5, count=6, sum=9.0, bounds=bounds, bucket_counts=[1.0, 3.0, 2.0])
    increase = distribution_increase(before, after)
    assert increase is not None
    assert (increase.count, increase.sum, increase.bucket_counts) == (3, 6.0, [0.0, 2.0, 1.0])
    dropped = Distribution(20, 5, count=4, sum=1.0, bounds=bounds, bucket_counts=[0.0, 3.0, 1.0])
    assert distribution_increase(before, dropped) is None  # a bucket went down
    rebounded = Distribution(20, 5, count=6, sum=9.0, bounds=(1.0, 3.0), bucket_counts=[1, 3, 2])
    assert distribution_increase(before, rebounded) is None  # new bounds
    restarted = Distribution(20, 15, count=6, sum=9.0, bounds=bounds, bucket_counts=[1, 3, 2])
    assert distribution_increase(before, restarted) is None  # new start time


# --- exponential histograms ----------------------------------------------------------


def test_exponential_quantile_interpolates_log_linearly() -> None:
    # Scale 0: base 2; bucket 0 is (1, 2], bucket 1 is (2, 4].
    buckets = Exponential(0, positive={0: 4.0, 1: 4.0})
    assert exponential_quantile(0.5, buckets) == pytest.approx(2.0)
    assert exponential_quantile(0.25, buckets) == pytest.approx(2**0.5)
    assert exponential_quantile(0.75, buckets) == pytest.approx(2**1.5)
    # Scale 1: base sqrt(2); bucket 3 is (2**1.5, 4].
    assert exponential_quantile(0.5, Exponential(1, positive={3: 2.0})) == pytest.approx(2**1.75)


def test_exponential_quantile_negative_and_zero_buckets() -> None:
    # Ascending: (-4, -2] x2, zero bucket [-1, 1] x2, (1, 2] x4.
    buckets = Exponential(0, 2.0, 1.0, positive={0: 4.0}, negative={1: 2.0})
    assert exponential_quantile(0.125, buckets) == pytest.approx(-(2**1.5))
    assert exponential_quantile(0.375, buckets) == pytest.approx(0.0)  # mid zero bucket
    assert exponential_quantile(0.99, buckets) == pytest.approx(2**0.98)
    assert exponential_quantile(0.5, Exponential(0, zero_count=4.0)) == 0.0
    assert exponential_quantile(0.5, Exponential(0)) is None


def test_exponential_quantile_on_a_bucket_edge_before_empty_buckets() -> None:
    # Rank 2 ends bucket 0, (1, 2]; buckets 1 and 2 are empty, bucket 3 is (8, 16].
    buckets = Exponential(0, positive={0: 2.0, 1: 0.0, 2: 0.0, 3: 2.0})
    assert exponential_quantile(0.5, buckets) == pytest.approx(2.0)
    assert exponential_quantile(1.0, Exponential(0, positive={0: 2.0, 1: 0.0})) == 2.0


def test_downscale_and_merge_at_the_smallest_scale() -> None:
    fine = Exponential(1, positive={0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, -1: 5.0})
    assert downscale(fine, 0).positive == {0: 3.0, 1: 7.0, -1: 5.0}
    coarse = Exponential(0, 1.0, positive={1: 1.0})
    merged = merge_exponential([fine, coarse])
    assert merged is not None
    assert (merged.scale, merged.zero_count, merged.positive) == (0, 1.0, {0: 3.0, 1: 8.0, -1: 5.0})


def test_merge_moves_buckets_inside_a_wider_zero_bucket() -> None:
    wide = Exponential(0, 1.0, 2.0)
    narrow = Exponential(0, positive={0: 3.0, 1: 1.0})  # (1, 2] now inside [0, 2]
    merged = merge_exponential([wide, narrow])
    assert merged is not None and merged.zero_count == 4.0 and merged.positive == {1: 1.0}


def test_cumulative_exponential_increase_across_a_scale_change() -> None:
    before = Distribution(10, count=3, exponential=Exponential(1, positive={0: 1.0, 1: 2.0}))
    after = Distribution(20, count=5, exponential=Exponential(0, positive={0: 4.0, 1: 1.0}))
    increase = distribution_increase(before, after)
    assert increase is not None and increase.exponential is not None
    assert increase.exponential.positive == {0: 1.0, 1: 1.0}
    shrunk = Distribution(20, count=5, exponential=Exponential(0, positive={0: 2.0, 1: 3.0}))
    assert distribution_increase(before, shrunk) is None


# --- evaluation ----------------------------------------------------------------------


def test_gauge_takes_each_series_last_value_then_aggregates() -> None:
    first = _series(GAUGE, [Sample(1000, 1.0), Sample(1090, 3.0), Sample(1150, 5.0)])
    second = _series(GAUGE, [Sample(1010, 10.0), Sample(1200, math.nan)])
    assert evaluate([first, second], "sum", WINDOW) == {(): [(1000, 13.0), (1100, 5.0)]}
    assert evaluate([first, second], "avg", WINDOW) == {(): [(1000, 6.5), (1100, 5.0)]}
    assert evaluate([first, second], "max", WINDOW) == {(): [(1000, 10.0), (1100, 5.0)]}
    assert evaluate([first, second], "count", WINDOW) == {(): [(1000, 2.0), (1100, 1.0)]}


def test_delta_sums_add_up_and_rate_divides_by_the_step() -> None:
    deltas = [Sample(990, 7.0), Sample(1000, 1.0), Sample(1050, 2.0), Sample(1120, 4.0)]
    series = _series(SUM, deltas, temporality=TEMPORALITY_DELTA)
    assert evaluate([series], "sum", WINDOW) == {(): [(1000, 3.0), (1100, 4.0)]}
    assert evaluate([series], "rate", WINDOW) == {(): [(1000, 0.03), (1100, 0.04)]}


def test_cumulative_rate_across_a_reset_grouped_by_label() -> None:
    a = _series(SUM, [Sample(950, 10.0), Sample(1050, 30.0), Sample(1150, 5.0)], [("k", "a")])
    b = _series(SUM, [Sample(1010, 2.0, 1005), Sample(1110, 6.0, 1005)], [("k", "b")])
    result = evaluate([a, b], "rate", WINDOW)
    assert result == {
        (("k", "a"),): [(1000, 0.2), (1100, 0.05)],
        (("k", "b"),): [(1000, 0.02), (1100, 0.04)],
    }


def test_histogram_percentile_from_cumulative_increases_of_two_series() -> None:
    bounds = (10.0, 20.0)

    def point(time_s: float, counts: list[float]) -> Distribution:
        return Distribution(time_s, 900, sum(counts), 0.0, bounds, counts)

    a = _series(HISTOGRAM, [point(950, [1, 1, 0]), point(1050, [3, 1, 0])])
    b = _series(HISTOGRAM, [point(950, [0, 0, 0]), point(1050, [0, 2, 0])])
    # Step 1000 merges the increases [2, 0, 0] and [0, 2, 0]: p50 rank 2 ends (0, 10].
    assert evaluate([a, b], "p50", WINDOW) == {(): [(1000, 10.0)]}
    assert evaluate([a, b], "p90", WINDOW) == {(): [(1000, pytest.approx(10 + 10 * 1.6 / 2))]}
    assert evaluate([a, b], "count", WINDOW) == {(): [(1000, 4.0)]}
    assert evaluate([a, b], "avg", WINDOW) == {(): [(1000, 0.0)]}


def test_summary_percentile_is_the_largest_series_value() -> None:
    def point(time_s: float, p99: float) -> Distribution:
        return Distribution(time_s, None, 1, 1.0, quantiles={0.5: 1.0, 0.99: p99})

    a = _series(SUMMARY, [point(1010, 7.0), point(1020, 8.0)], temporality=0)
    b = _series(SUMMARY, [point(1030, 3.0)], temporality=0)
    assert evaluate([a, b], "p99", WINDOW) == {(): [(1000, 8.0)]}
    assert evaluate([a, b], "p90", WINDOW) == {}


def test_no_nan_or_infinite_output() -> None:
    empty = _series(
        HISTOGRAM,
        [Distribution(1010, None, 0, 0.0, (1.0,), [0.0, 0.0])],
        temporality=TEMPORALITY_DELTA,
    )
    assert evaluate([empty], "avg", WINDOW) == {}
    assert evaluate([empty], "p50", WINDOW) == {}
    assert evaluate([empty], "count", WINDOW) == {(): [(1000, 0.0)]}
    huge = _series(
        EXPONENTIAL_HISTOGRAM,
        [Distribution(1010, None, 1, 1.0, exponential=Exponential(-10, positive={2**31 - 1: 1.0}))],
        temporality=TEMPORALITY_DELTA,
    )
    assert evaluate([huge], "p50", WINDOW) == {}
    assert evaluate([], "sum", WINDOW) == {}


def test_unsupported_aggregations_explain_what_to_use() -> None:
    assert "needs a counter" in unsupported(GAUGE, "rate", "g", monotonic=False)
    assert "needs a histogram" in unsupported(GAUGE, "p95", "g", monotonic=False)
    assert "needs a histogram" in unsupported(SUM, "p50", "c", monotonic=True)
    assert "non-monotonic" in unsupported(SUM, "rate", "u", monotonic=False)
    assert "not kept per step" in unsupported(HISTOGRAM, "max", "h", monotonic=False)
    assert unsupported(SUM, "rate", "c", monotonic=True) is None
    assert unsupported(HISTOGRAM, "rate", "h", monotonic=False) is None
    assert unsupported(SUMMARY, "p50", "s", monotonic=False) is None


def test_group_labels_from_attributes_and_service() -> None:
    attributes = {"model": "gpt-4o", "code": 200, "ok": True}
    keys = ("model", "code", "ok", "service.name", "missing")
    assert group_labels(attributes, "api", keys) == (
        ("model", "gpt-4o"),
        ("code", "200"),
        ("ok", "true"),
        ("service.name", "api"),
    )
    assert group_labels({"service.name": "x"}, "", ("service.name",)) == (("service.name", "x"),)
