"""Metric point records → COPY rows for `metric_points`, in the column order of app/db/tables.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.db.partitions import days_of
from app.db.tables import METRIC_POINT_COLUMNS
from app.domain.metrics import MetricPoint
from app.ingest.offload import Steps, drive
from app.ingest.rows import dumps, timestamp
from app.ingest.writer import TableRows

# The tuple below is built in this order; a schema change must fail here, not corrupt rows.
_EXPECTED_COLUMNS = (
    "project_id",
    "series_id",
    "time",
    "start_time",
    "value",
    "count",
    "sum",
    "min",
    "max",
    "explicit_bounds",
    "bucket_counts",
    "scale",
    "zero_count",
    "zero_threshold",
    "positive_offset",
    "positive_bucket_counts",
    "negative_offset",
    "negative_bucket_counts",
    "quantiles",
    "exemplars",
    "flags",
)
if METRIC_POINT_COLUMNS != _EXPECTED_COLUMNS:
    raise RuntimeError(f"metric_points columns changed: {METRIC_POINT_COLUMNS}")


# Points made rows between two pauses of `metric_point_rows_steps`.
POINTS_PER_STEP = 64


def metric_point_rows(project_id: int, points: Sequence[MetricPoint]) -> TableRows:
    """Rows for points whose `series_id` is set (and registered)."""
    return drive(metric_point_rows_steps(project_id, points))


def metric_point_rows_steps(project_id: int, points: Sequence[MetricPoint]) -> Steps[TableRows]:
    """`metric_point_rows` as sliced steps (see app/ingest/offload.py)."""
    rows = []
    # Stored times have microsecond precision and (project, series, time) is unique; a
    # second point of one series at one instant in the same request would force the
    # writer's slow merge path only to be skipped there, so it is skipped here instead.
    seen: set[tuple[int, int]] = set()
    # A collection cycle stamps all its points with one time, and a stream's points share
    # a start time: convert each distinct instant once.
    instants: dict[int, datetime] = {}
    for number, point in enumerate(points, 1):
        if not number % POINTS_PER_STEP:
            yield
        time_unix_nano = point.time_unix_nano
        identity = (point.series_id, time_unix_nano // 1000)
        if identity in seen:
            continue
        seen.add(identity)
        rows.append(
            (
                project_id,
                point.series_id,
                _instant(instants, time_unix_nano),
                _instant(instants, point.start_time_unix_nano)
                if point.start_time_unix_nano
                else None,
                point.value,
                point.count,
                point.sum,
                point.min,
                point.max,
                point.explicit_bounds,
                point.bucket_counts,
                point.scale,
                point.zero_count,
                point.zero_threshold,
                point.positive_offset,
                point.positive_bucket_counts,
                point.negative_offset,
                point.negative_bucket_counts,
                dumps(point.quantiles) if point.quantiles is not None else None,
                dumps(point.exemplars) if point.exemplars else None,
                point.flags,
            )
        )
    days = days_of(point.time_unix_nano for point in points)
    return TableRows("metric_points", METRIC_POINT_COLUMNS, rows, days)


def _instant(cache: dict[int, datetime], unix_nano: int) -> datetime:
    moment = cache.get(unix_nano)
    if moment is None:
        moment = cache[unix_nano] = timestamp(unix_nano)
    return moment
