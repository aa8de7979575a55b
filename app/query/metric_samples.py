"""Values of metric alert rules: one sample per group over the window `(now - window, now]`.

Contract of `metric_samples`:

- The value is what GET /api/v1/metrics/query answers for one step covering exactly the
  window (`evaluate_metric` with `one_step`, app/domain/metric_math.py): sum, avg, min,
  max, count, rate (per second over the window) or a percentile, per group of series,
  with the same counter-reset, cumulative-baseline and histogram rules. No sample for a
  group without a value in the window.
- Filters: `attributes` compare series attributes as the API's `attr.<key>=<value>`;
  `service` is the API's `attr.service.name=`: the series' service (or that attribute).
  `type` picks one type of a name that has several, as the API's `type`.
- Labels are `{group_by key: value as text}`, a missing value "" (the API leaves the key
  out); `service.name` is the series' service.
- A name no series of the project has yields no sample: the rule does not fire (and its
  `absent` form does). A query the API would refuse (an aggregation the type has not, a
  name of several types without `type`, too many points) raises `InvalidMetricQuery`.
- `absent` without group_by: one sample `{}` = 1.0 when no matching series has a recorded
  point in the window. With group_by: 1.0 for each group with a point in the 24 h before
  the window and none in it.
- Every query is bounded by project and time (series by project and name), so a rule's
  cost follows its window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import metric_points
from app.domain.alert_rules import RuleQuery, RuleSample
from app.domain.metric_math import Labels, group_labels
from app.domain.metrics import FLAG_NO_RECORDED_VALUE
from app.query.metrics import MetricNotFound, MetricQuery, evaluate_metric, matching_series

ABSENT_LOOKBACK = timedelta(hours=24)


def _attributes(query: RuleQuery) -> tuple[tuple[str, str], ...]:
    service = query.filter("service")
    service_filter = (("service.name", service),) if service else ()
    return query.attribute_filters + service_filter


async def metric_samples(
    connection: AsyncConnection, project_id: int, query: RuleQuery, now: datetime
) -> list[RuleSample]:
    """The rule's samples, sorted by labels."""
    if query.metric is None:
        raise ValueError("a metrics rule names its metric")
    if query.aggregation == "absent":
        return await _absent(connection, project_id, query, query.metric, now)
    window_s = query.window_s
    metric_query = MetricQuery(
        name=query.metric,
        step_s=window_s,
        start=now - timedelta(seconds=window_s),
        end=now,
        agg=query.aggregation,
        type=query.type,
        group_by=tuple(query.group_by),
        attributes=_attributes(query),
        one_step=True,
    )
    try:
        result = await evaluate_metric(connection, project_id, metric_query)
    except MetricNotFound:
        return []
    return [
        RuleSample(dict(labels), value)
        for labels, points in sorted(result.groups.items())
        for _, value in points  # one step: at most one point
    ]


async def _absent(
    connection: AsyncConnection, project_id: int, query: RuleQuery, metric: str, now: datetime
) -> list[RuleSample]:
    found = await matching_series(connection, project_id, metric, query.type, _attributes(query))
    start = now - timedelta(seconds=query.window_s)
    points = metric_points.c
    in_window = points.time > start
    seen = {}
    if found:
        ids = [row.series_id for row in found]
        rows = await connection.execute(
            select(
                points.series_id,
                func.bool_or(in_window),
                func.bool_or(~in_window),
            )
            .where(
                points.project_id == project_id,
                points.series_id == any_(bindparam("series_ids", ids, type_=ARRAY(BigInteger))),
                points.time > (start - ABSENT_LOOKBACK if query.group_by else start),
                points.time <= now,
                points.flags.op("&")(FLAG_NO_RECORDED_VALUE) == 0,
            )
            .group_by(points.series_id)
        )
        seen = {series_id: (inside, before) for series_id, inside, before in rows}
    if not query.group_by:
        return [] if any(inside for inside, _ in seen.values()) else [RuleSample({}, 1.0)]
    reporting: set[Labels] = set()
    silent: set[Labels] = set()
    for row in found:
        inside, before = seen.get(row.series_id, (False, False))
        labels = group_labels(row.attributes, row.service_name, query.group_by, "")
        if inside:
            reporting.add(labels)
        elif before:
            silent.add(labels)
    return [RuleSample(dict(labels), 1.0) for labels in sorted(silent - reporting)]
