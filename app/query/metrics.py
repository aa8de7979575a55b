"""Reading metrics: a project's metric names, and step-aligned aggregation of one metric.

Contract of `list_metrics`: one entry per (name, type, unit) among the project's series,
sorted by name, then type and unit; `series_count` counts the series ever registered
(series rows outlive their points). `prefix` keeps names starting with it, literally.

Contract of `query_metric`:

- A name without any series in the caller's project raises `MetricNotFound` (404): a
  typo should not look like silence. A known name whose series or points do not match
  the filters or the range answers `series: []`.
- One metric name may hold series of several types (an instrument changed kind); the
  query then needs `type`, else `InvalidMetricQuery` (400). So does an aggregation the
  type does not support (`metric_math.unsupported`) and a summary percentile that no
  point stores.
- Steps start at multiples of `step` since the Unix epoch: the range is widened down to
  the step boundary at or before `start`, so every step but the last (which ends at
  `end`) is whole. Cumulative series are also read up to max(step, 5m) before that, so
  the first step's increase has a baseline. Steps without a value are omitted.
- `attr.<key>=<value>` filters compare series (point) attributes as trace search does;
  `service.name` also matches the series' service. Keys and values are bound parameters.
- Groups come back sorted by their labels; past `limit` groups the rest are cut and
  `truncated` is true. More than MAX_POINTS points in range is refused (400), never
  loaded: the answer would be too slow to be of use.
- `evaluate_metric` is the same computation on a given connection, returning every group;
  alert rules (app/query/metric_samples.py) run it with `one_step`: one step over exactly
  `(start, end]`, missing group_by values as "".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import BigInteger, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import metric_points, metric_series
from app.domain.metric_math import (
    PERCENTILES,
    Distribution,
    Exponential,
    Labels,
    Sample,
    SeriesInput,
    Window,
    evaluate,
    group_labels,
    step_start,
    stored_quantiles,
    unsupported,
)
from app.domain.metrics import (
    EXPONENTIAL_HISTOGRAM,
    FLAG_NO_RECORDED_VALUE,
    GAUGE,
    HISTOGRAM,
    SUM,
    SUMMARY,
)
from app.domain.times import iso
from app.query.traces import attribute_condition

MAX_POINTS = 500_000
LOOKBACK_S = 300  # how far before the first step a cumulative series' baseline is sought

_P = metric_points.c
_KIND_COLUMNS = {
    GAUGE: (_P.value,),
    SUM: (_P.value,),
    HISTOGRAM: (_P.count, _P.sum, _P.explicit_bounds, _P.bucket_counts),
    EXPONENTIAL_HISTOGRAM: (
        _P.count,
        _P.sum,
        _P.scale,
        _P.zero_count,
        _P.zero_threshold,
        _P.positive_offset,
        _P.positive_bucket_counts,
        _P.negative_offset,
        _P.negative_bucket_counts,
    ),
    SUMMARY: (_P.count, _P.sum, _P.quantiles),
}


class MetricNotFound(LookupError):
    """No series of that name in the caller's project."""


class InvalidMetricQuery(ValueError):
    """The query cannot be answered as asked; the message says what to send instead."""


@dataclass(frozen=True, slots=True)
class MetricQuery:
    name: str
    step_s: float  # whole seconds from the API; any length with one_step
    start: datetime
    end: datetime
    agg: str | None = None  # None: rate for a counter, avg otherwise
    type: str | None = None
    group_by: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()
    limit: int = 100
    # An alert rule's window: one step (start, end], step_s = end - start, and a missing
    # group_by value labelled "" instead of left out.
    one_step: bool = False


@dataclass(frozen=True, slots=True)
class MetricResult:
    kind: str
    unit: str
    agg: str
    window: Window
    groups: dict[Labels, list[tuple[float, float]]]


async def list_metrics(
    engine: AsyncEngine, project_id: int, *, prefix: str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    series = metric_series.c
    query = select(
        series.name,
        series.type,
        series.unit,
        func.count().label("series_count"),
        func.max(series.description).label("description"),
    ).where(series.project_id == project_id)
    if prefix:
        query = query.where(series.name.startswith(prefix, autoescape=True))
    query = (
        query.group_by(series.name, series.type, series.unit)
        .order_by(series.name, series.type, series.unit)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [
        {
            "name": row.name,
            "type": row.type,
            "unit": row.unit,
            "series_count": row.series_count,
            "description": row.description,
        }
        for row in rows
    ]


async def query_metric(engine: AsyncEngine, project_id: int, query: MetricQuery) -> dict[str, Any]:
    async with engine.connect() as connection:
        result = await evaluate_metric(connection, project_id, query)
    ordered = sorted(result.groups.items())
    return {
        "name": query.name,
        "type": result.kind,
        "unit": result.unit,
        "agg": result.agg,
        "step": f"{query.step_s}s",
        "start": iso(datetime.fromtimestamp(result.window.start_s, tz=UTC)),
        "end": iso(query.end),
        "series": [
            {"labels": dict(labels), "points": [[step, value] for step, value in points]}
            for labels, points in ordered[: query.limit]
        ],
        "truncated": len(ordered) > query.limit,
    }


async def evaluate_metric(
    connection: AsyncConnection, project_id: int, query: MetricQuery
) -> MetricResult:
    """Every group's (step, value) pairs. Raises MetricNotFound, InvalidMetricQuery."""
    kind, unit, monotonic = await _resolve_type(connection, project_id, query)
    agg = query.agg or ("rate" if kind == SUM and monotonic else "avg")
    problem = unsupported(kind, agg, query.name, monotonic=monotonic)
    if problem:
        raise InvalidMetricQuery(problem)
    start_s = query.start.timestamp()
    first_step = start_s if query.one_step else step_start(start_s, int(query.step_s))
    lookback = 0 if kind == GAUGE else max(query.step_s, LOOKBACK_S)
    window = Window(
        first_step, query.end.timestamp(), query.step_s, first_step - lookback, query.one_step
    )
    inputs = await _load(connection, project_id, query, kind, window)
    if kind == SUMMARY and agg in PERCENTILES:
        stored = stored_quantiles(inputs)
        if stored and PERCENTILES[agg] not in stored:
            listed = ", ".join(f"{q:g}" for q in sorted(stored))
            raise InvalidMetricQuery(
                f"{agg} needs the quantile {PERCENTILES[agg]:g}, which summary "
                f"{query.name!r} does not store (it stores {listed}); percentiles cannot be "
                "computed from a summary's other quantiles"
            )
    return MetricResult(kind, unit, agg, window, evaluate(inputs, agg, window))


async def _resolve_type(
    connection: AsyncConnection, project_id: int, query: MetricQuery
) -> tuple[str, str, bool]:
    """(type, unit, every series monotonic) of the metric, or why it cannot be queried."""
    series = metric_series.c
    rows = (
        await connection.execute(
            select(series.type, func.min(series.unit), func.bool_and(series.is_monotonic))
            .where(series.project_id == project_id, series.name == query.name)
            .group_by(series.type)
            .order_by(series.type)
        )
    ).all()
    if not rows:
        raise MetricNotFound(
            f"no metric named {query.name!r:.200} in this project; GET /api/v1/metrics lists them"
        )
    by_type = {row[0]: (row[1], bool(row[2])) for row in rows}
    if query.type is None and len(by_type) > 1:
        raise InvalidMetricQuery(
            f"metric {query.name!r:.200} has series of several types ({', '.join(by_type)}); "
            "choose one with type=<type>"
        )
    kind = query.type or rows[0][0]
    if kind not in by_type:
        raise InvalidMetricQuery(
            f"metric {query.name!r:.200} has no series of type {kind!r}; "
            f"its types: {', '.join(by_type)}"
        )
    unit, monotonic = by_type[kind]
    return kind, unit, monotonic


async def matching_series(
    connection: AsyncConnection,
    project_id: int,
    name: str,
    kind: str | None,
    attributes: tuple[tuple[str, str], ...],
) -> list[Any]:
    """The series of metric `name` (of type `kind`, if given) matching attribute filters."""
    series = metric_series.c
    conditions = [series.project_id == project_id, series.name == name]
    if kind is not None:
        conditions.append(series.type == kind)
    for key, value in attributes:
        condition = attribute_condition(series.attributes, key, value)
        if key == "service.name":
            condition = or_(series.service_name == value, condition)
        conditions.append(condition)
    query = select(
        series.series_id,
        series.temporality,
        series.is_monotonic,
        series.service_name,
        series.attributes,
    ).where(*conditions)
    return list((await connection.execute(query)).all())


async def _load(
    connection: AsyncConnection, project_id: int, query: MetricQuery, kind: str, window: Window
) -> list[SeriesInput]:
    found = await matching_series(connection, project_id, query.name, kind, query.attributes)
    if not found:
        return []
    ids = [row.series_id for row in found]
    recorded = [_P.flags.op("&")(FLAG_NO_RECORDED_VALUE) == 0]
    if kind in (GAUGE, SUM):
        recorded.append(_P.value.is_not(None))
    points = (
        await connection.execute(
            select(_P.series_id, _P.time, _P.start_time, *_KIND_COLUMNS[kind])
            .where(
                _P.project_id == project_id,
                _P.series_id == any_(bindparam("series_ids", ids, type_=ARRAY(BigInteger))),
                _P.time >= datetime.fromtimestamp(window.fetch_from_s, tz=UTC),
                _P.time <= query.end,
                *recorded,
            )
            .order_by(_P.series_id, _P.time)
            .limit(MAX_POINTS + 1)
        )
    ).all()
    if len(points) > MAX_POINTS:
        raise InvalidMetricQuery(
            f"metric {query.name!r:.200} has more than {MAX_POINTS} points in this range; "
            "narrow it with attr.<key>=<value> filters or a shorter start..end"
        )
    convert = _sample if kind in (GAUGE, SUM) else _distribution
    by_series = {
        series_id: [convert(row) for row in rows]
        for series_id, rows in groupby(points, key=lambda row: row.series_id)
    }
    return [
        SeriesInput(
            labels=group_labels(
                row.attributes, row.service_name, query.group_by, "" if query.one_step else None
            ),
            kind=kind,
            temporality=row.temporality,
            monotonic=row.is_monotonic,
            points=by_series[row.series_id],
        )
        for row in found
        if row.series_id in by_series
    ]


def _seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _sample(row: Any) -> Sample:
    return Sample(row.time.timestamp(), row.value, _seconds(row.start_time))


def _distribution(row: Any) -> Distribution:
    point = Distribution(row.time.timestamp(), _seconds(row.start_time), row.count or 0, row.sum)
    mapping = row._mapping
    if "bucket_counts" in mapping and row.bucket_counts:
        point.bounds = tuple(row.explicit_bounds or ())
        point.bucket_counts = [float(count) for count in row.bucket_counts]
    if "scale" in mapping and row.scale is not None:
        point.exponential = Exponential(
            row.scale,
            float(row.zero_count or 0),
            row.zero_threshold or 0.0,
            _sparse(row.positive_offset, row.positive_bucket_counts),
            _sparse(row.negative_offset, row.negative_bucket_counts),
        )
    if "quantiles" in mapping and row.quantiles:
        point.quantiles = {
            float(item["quantile"]): float(item["value"])
            for item in row.quantiles
            if isinstance(item.get("value"), int | float) and math.isfinite(item["value"])
        }
    return point


def _sparse(offset: int | None, counts: list[int] | None) -> dict[int, float]:
    base = offset or 0
    return {base + index: float(count) for index, count in enumerate(counts or ()) if count}
