"""Metric query math: steps, per-step reduction, counter resets and quantiles from buckets.

Pure functions over plain data; app/query/metrics.py fetches the points and calls
`evaluate`. The semantics, for every step `[t, t + step)` (t a multiple of step since the
Unix epoch; an alert rule's window is one step `(now - window, now]`, see `Window`) and
every group of series:

- gauge, and a non-monotonic cumulative sum (an up-down counter's current total): each
  series' last value in the step; sum/avg/min/max/count then aggregate those values
  across the series of the group (count = how many series had a value).
- sum, delta: each series' values in the step add up; cumulative monotonic sum (a
  counter): each series' increase, credited to the step of the later point of each
  consecutive pair. A drop (value < previous) or a changed start time is a reset: the
  increase is then the new value itself, counted from zero, as Prometheus `rate` does;
  unlike Prometheus nothing is extrapolated to the step edges, so the steps' increases
  add up to the exact increase over the range. A series' first point counts from zero
  only when its start time lies inside the fetched range (the counter began there);
  otherwise it is the baseline. sum/avg/min/max/count aggregate the per-series increases;
  rate = the group's summed increase / step seconds.
- histogram and exponential histogram: delta points in the step add up; cumulative ones
  contribute their increase (reset when the count or a bucket drops, the bounds or the
  start time change). All series of the group merge into one distribution per step:
  count = observations, sum = their sum, avg = sum / count, rate = count / step seconds,
  pNN = quantile from the merged buckets. min and max are refused (not kept per step).
- summary: count/sum/avg/rate as for a cumulative histogram; pNN is the stored quantile
  of each series' last point in the step, and as summary quantiles cannot be merged,
  the group's value is the largest of its series' values.

Explicit-bounds quantiles follow Prometheus `histogram_quantile`: linear interpolation in
the bucket holding the rank; the first bucket starts at 0 when its bound is positive
(else its bound is returned); a rank in the +Inf bucket returns the last finite bound.
Series with different bounds merge onto the union of the bounds, each finite bucket's
count split by width - exact under the same uniform-within-bucket assumption - and a
+Inf count moving to the union bucket just above that series' last bound. Exponential
quantiles interpolate log-linearly inside a bucket (Prometheus' exponential
interpolation for native histograms) and linearly inside the zero bucket; series of
different scales merge at the smallest scale, with the largest zero threshold.
Steps without a (finite) value are omitted; no output is NaN or infinite.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.domain.bucket_math import (
    Exponential,
    downscale,
    exponential_quantile,
    histogram_quantile,
    merge_buckets,
    merge_exponential,
)
from app.domain.metrics import (
    EXPONENTIAL_HISTOGRAM,
    GAUGE,
    HISTOGRAM,
    SUM,
    SUMMARY,
    TEMPORALITY_DELTA,
)

AGGREGATIONS = ("sum", "avg", "min", "max", "count", "rate", "p50", "p90", "p95", "p99")
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
MAX_STEPS = 11_000  # as Prometheus caps a range query's resolution
# Default steps: the smallest of these at least (end - start) / 60.
NICE_STEPS_S = (1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
                43200, 86400, 172800, 604800)  # fmt: skip
DISTRIBUTIONS = (HISTOGRAM, EXPONENTIAL_HISTOGRAM, SUMMARY)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """A gauge or sum point. Times in Unix seconds; `start_time_s` None = not sent."""

    time_s: float
    value: float
    start_time_s: float | None = None


@dataclass(slots=True)
class Distribution:
    """A histogram, exponential histogram or summary point, an increase, or a merge of them.

    `sum` None = unknown (the optional field was not sent); `bounds` None = no buckets.
    """

    time_s: float = 0.0
    start_time_s: float | None = None
    count: float = 0.0
    sum: float | None = 0.0
    bounds: tuple[float, ...] | None = None
    bucket_counts: list[float] | None = None
    exponential: Exponential | None = None
    quantiles: dict[float, float] | None = None


@dataclass(slots=True)
class SeriesInput:
    """One series of the queried metric: its group's labels, kind and points by time."""

    labels: Labels
    kind: str
    temporality: int
    monotonic: bool
    points: Sequence[Sample] | Sequence[Distribution]


@dataclass(frozen=True, slots=True)
class Window:
    """Steps from `start_s` (step-aligned) to `end_s`; points from `fetch_from_s` on.

    `one_step`: a single step `(start_s, end_s]` of `step_s` = end - start seconds, as an
    alert rule's window; `start_s` need not be aligned and a point at it is left out.
    """

    start_s: float
    end_s: float
    step_s: float
    fetch_from_s: float
    one_step: bool = False

    def holds(self, time_s: float) -> bool:
        if self.one_step:
            return self.start_s < time_s <= self.end_s
        return self.start_s <= time_s <= self.end_s

    def step_of(self, time_s: float) -> float:
        # One step: comparing times, never dividing them, so float noise cannot split it.
        # The API's steps are whole seconds.
        return self.start_s if self.one_step else step_start(time_s, int(self.step_s))


def default_step_s(span_s: float) -> int:
    raw = span_s / 60
    for nice in NICE_STEPS_S:
        if nice >= raw:
            return nice
    return math.ceil(raw / 86400) * 86400


def step_start(time_s: float, step_s: int) -> int:
    return math.floor(time_s / step_s) * step_s


def step_count(start_s: float, end_s: float, step_s: int) -> int:
    return (step_start(end_s, step_s) - step_start(start_s, step_s)) // step_s + 1


def unsupported(kind: str, agg: str, name: str, *, monotonic: bool) -> str | None:
    """Why `agg` cannot apply to a metric of `kind`, or None when it can."""
    if agg in PERCENTILES and kind in (GAUGE, SUM):
        return (
            f"{agg} needs a histogram (bucket counts); {name!r} is a {kind}: use "
            "avg, min, max, sum or count" + (", or rate" if kind == SUM else "")
        )
    if agg == "rate" and kind == GAUGE:
        return (
            f"rate needs a counter (a monotonic sum); {name!r} is a gauge: use avg, "
            "min, max, sum or count"
        )
    if agg == "rate" and kind == SUM and not monotonic:
        return (
            f"rate needs a counter (a monotonic sum); {name!r} is a non-monotonic sum: "
            "use sum for its net change per step, or avg"
        )
    if agg in ("min", "max") and kind in DISTRIBUTIONS:
        return f"{agg} is not kept per step for a {kind}; use p50, p90, p95, p99, avg, sum or count"
    return None


def label_text(value: Any) -> str:
    """An attribute value as a label: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def group_labels(
    attributes: dict[str, Any], service_name: str, keys: Sequence[str], missing: str | None = None
) -> Labels:
    """The series' values of the group_by keys; `service.name` is the series' service.

    A key the series lacks is left out, or given the value `missing` (rules: "").
    """
    labels = []
    for key in keys:
        value = (service_name or None) if key == "service.name" else None
        if value is None:
            value = attributes.get(key)
        if value is not None:
            labels.append((key, label_text(value)))
        elif missing is not None:
            labels.append((key, missing))
    return tuple(labels)


# --- numbers -------------------------------------------------------------------------


def counter_increases(samples: Iterable[Sample], fetch_from_s: float) -> list[tuple[float, float]]:
    """(time, increase) of a cumulative counter, reset-aware; see the module docstring."""
    increases: list[tuple[float, float]] = []
    previous: Sample | None = None
    for sample in samples:
        if not math.isfinite(sample.value):
            continue  # NaN is no reading; the next point compares with the last real one
        if previous is None:
            if sample.start_time_s is not None and sample.start_time_s >= fetch_from_s:
                increases.append((sample.time_s, sample.value))
        elif sample.value < previous.value or _restarted(previous, sample):
            increases.append((sample.time_s, sample.value))
        else:
            increases.append((sample.time_s, sample.value - previous.value))
        previous = sample
    return increases


def _restarted(previous: Sample | Distribution, current: Sample | Distribution) -> bool:
    return (
        previous.start_time_s is not None
        and current.start_time_s is not None
        and current.start_time_s != previous.start_time_s
    )


def per_step(
    timed: Iterable[tuple[float, float]], window: Window, *, last: bool
) -> dict[float, float]:
    """Values by step start: the last one in each step, or their sum. Non-finite skipped."""
    steps: dict[float, float] = {}
    for time_s, value in timed:
        if not window.holds(time_s) or not math.isfinite(value):
            continue
        step = window.step_of(time_s)
        steps[step] = value if last else steps.get(step, 0.0) + value
    return steps


def aggregate(values: Sequence[float], agg: str, step_s: float) -> float | None:
    """Across the series of a group: sum, avg, min, max, count, rate (= sum / step)."""
    if not values:
        return None
    if agg == "avg":
        return exact_sum(values) / len(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    if agg == "count":
        return float(len(values))
    total = exact_sum(values)
    return total / step_s if agg == "rate" else total


def exact_sum(values: Sequence[float]) -> float:
    """fsum, except that a sum past the largest double is infinite (and later left out as
    no value) instead of fsum's OverflowError."""
    try:
        return math.fsum(values)
    except OverflowError:
        return sum(values)


# --- explicit-bounds histograms ------------------------------------------------------


def merge_distributions(parts: Sequence[Distribution]) -> Distribution:
    """Counts and sums add up; buckets merge as the module docstring says."""
    merged = Distribution(count=math.fsum(part.count for part in parts))
    sums = [part.sum for part in parts]
    merged.sum = None if any(s is None for s in sums) else exact_sum(sums)  # type: ignore[arg-type]
    buckets = merge_buckets(
        [(p.bounds, p.bucket_counts) for p in parts if p.bounds is not None and p.bucket_counts]
    )
    if buckets is not None:
        merged.bounds, merged.bucket_counts = buckets
    merged.exponential = merge_exponential([p.exponential for p in parts if p.exponential])
    return merged


def distribution_increase(previous: Distribution, current: Distribution) -> Distribution | None:
    """`current - previous` of a cumulative distribution, or None when it was reset."""
    if current.count < previous.count or _restarted(previous, current):
        return None
    increase = Distribution(current.time_s, current.start_time_s, current.count - previous.count)
    increase.sum = (
        None if current.sum is None or previous.sum is None else current.sum - previous.sum
    )
    if current.bucket_counts is not None:
        if current.bounds != previous.bounds or previous.bucket_counts is None:
            return None
        deltas = [a - b for a, b in zip(current.bucket_counts, previous.bucket_counts, strict=True)]
        if min(deltas, default=0.0) < 0:
            return None
        increase.bounds, increase.bucket_counts = current.bounds, deltas
    if current.exponential is not None:
        if previous.exponential is None:
            return None
        scale = min(current.exponential.scale, previous.exponential.scale)
        now, before = downscale(current.exponential, scale), downscale(previous.exponential, scale)
        delta = Exponential(scale, now.zero_count - before.zero_count, now.zero_threshold)
        for side, after, earlier in (
            (delta.positive, now.positive, before.positive),
            (delta.negative, now.negative, before.negative),
        ):
            for index in after.keys() | earlier.keys():
                side[index] = after.get(index, 0.0) - earlier.get(index, 0.0)
        if (
            delta.zero_count < 0
            or min([*delta.positive.values(), *delta.negative.values(), 0.0]) < 0
        ):
            return None
        increase.exponential = delta
    return increase


def distribution_increases(
    points: Iterable[Distribution], fetch_from_s: float
) -> list[Distribution]:
    """Per-point increases of a cumulative distribution; first-point rule as for counters."""
    increases: list[Distribution] = []
    previous: Distribution | None = None
    for point in points:
        if previous is None:
            if point.start_time_s is not None and point.start_time_s >= fetch_from_s:
                increases.append(point)
        else:
            increases.append(distribution_increase(previous, point) or point)
        previous = point
    return increases


def distribution_value(merged: Distribution, agg: str, step_s: float) -> float | None:
    if agg == "count":
        return merged.count
    if agg == "rate":
        return merged.count / step_s
    if agg == "sum":
        return merged.sum
    if agg == "avg":
        return merged.sum / merged.count if merged.sum is not None and merged.count > 0 else None
    q = PERCENTILES[agg]
    if merged.exponential is not None:
        return exponential_quantile(q, merged.exponential)
    if merged.bounds is not None and merged.bucket_counts is not None:
        return histogram_quantile(q, merged.bounds, merged.bucket_counts)
    return None


def stored_quantiles(series: Iterable[SeriesInput]) -> set[float]:
    """Every quantile the summaries' points store."""
    found: set[float] = set()
    for one in series:
        for point in one.points:
            if isinstance(point, Distribution) and point.quantiles:
                found.update(point.quantiles)
    return found


# --- evaluation ----------------------------------------------------------------------


def evaluate(
    series: Iterable[SeriesInput], agg: str, window: Window
) -> dict[Labels, list[tuple[float, float]]]:
    """Each group's (step start, value) pairs, oldest first; see the module docstring.

    Step starts are whole seconds (ints) for the API's epoch-aligned steps.
    """
    numbers: dict[Labels, dict[float, list[float]]] = {}
    distributions: dict[Labels, dict[float, list[Distribution]]] = {}
    for one in series:
        if one.kind in DISTRIBUTIONS and not (one.kind == SUMMARY and agg in PERCENTILES):
            points: Sequence[Distribution] = one.points  # type: ignore[assignment]
            if one.temporality != TEMPORALITY_DELTA:
                points = distribution_increases(points, window.fetch_from_s)
            steps = distributions.setdefault(one.labels, {})
            for point in points:
                if window.holds(point.time_s):
                    steps.setdefault(window.step_of(point.time_s), []).append(point)
            continue
        group = numbers.setdefault(one.labels, {})
        for step, value in _reduce_numbers(one, agg, window).items():
            group.setdefault(step, []).append(value)
    results: dict[Labels, list[tuple[float, float]]] = {}
    combine: Callable[[list[float]], float | None] = (
        max if agg in PERCENTILES else lambda values: aggregate(values, agg, window.step_s)
    )
    for labels, steps in numbers.items():
        results[labels] = _finite((step, combine(values)) for step, values in steps.items())
    for labels, dist_steps in distributions.items():
        results[labels] = _finite(
            (step, distribution_value(merge_distributions(parts), agg, window.step_s))
            for step, parts in dist_steps.items()
        )
    return {labels: points for labels, points in results.items() if points}


def _reduce_numbers(one: SeriesInput, agg: str, window: Window) -> dict[float, float]:
    if one.kind == SUMMARY:  # a percentile: the stored quantile of the step's last point
        q = PERCENTILES[agg]
        points: Sequence[Distribution] = one.points  # type: ignore[assignment]
        found = ((p.time_s, p.quantiles[q]) for p in points if p.quantiles and q in p.quantiles)
        return per_step(found, window, last=True)
    samples: Sequence[Sample] = one.points  # type: ignore[assignment]
    if one.kind == SUM and one.temporality == TEMPORALITY_DELTA:
        return per_step(((s.time_s, s.value) for s in samples), window, last=False)
    if one.kind == SUM and one.monotonic:
        return per_step(counter_increases(samples, window.fetch_from_s), window, last=False)
    return per_step(((s.time_s, s.value) for s in samples), window, last=True)


def _finite(pairs: Iterable[tuple[float, float | None]]) -> list[tuple[float, float]]:
    return sorted(
        (step, value) for step, value in pairs if value is not None and math.isfinite(value)
    )
