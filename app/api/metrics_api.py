"""GET /api/v1/metrics (the project's metric names) and GET /api/v1/metrics/query."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import BadRequest, NotFound
from app.api.params import choice, text_param, time_range
from app.api.traces import attribute_filters
from app.domain.durations import parse_duration_seconds
from app.domain.metric_math import AGGREGATIONS, MAX_STEPS, default_step_s, step_count
from app.domain.metrics import METRIC_TYPES
from app.query.metrics import (
    InvalidMetricQuery,
    MetricNotFound,
    MetricQuery,
    list_metrics,
    query_metric,
)

router = APIRouter(prefix="/api/v1", tags=["query"])
MAX_METRICS_LIMIT = 10_000
MAX_SERIES_LIMIT = 1000
MAX_GROUP_BY_KEYS = 10
# Steps are aligned to the epoch and cumulative series read one step back for a baseline,
# so a step of centuries would reach before year 1; ten years is more than any range needs.
MAX_STEP_S = 3650 * 86400


def parse_step(step: str | None, start: datetime, end: datetime) -> int:
    """Whole seconds; without `step`, (end - start) / 60 rounded up to a round duration."""
    start_s, end_s = start.timestamp(), end.timestamp()
    if not step:
        return default_step_s(end_s - start_s)
    try:
        seconds = parse_duration_seconds(step)
    except ValueError as error:
        raise BadRequest(f"step: {error}") from None
    if not 1 <= seconds <= MAX_STEP_S or seconds != int(seconds):
        raise BadRequest(
            f"step {step!r:.40} is not accepted; use a whole number of seconds from 1s to "
            f"{MAX_STEP_S // 86400}d, e.g. 30s, 1m, 5m"
        )
    steps = step_count(start_s, end_s, int(seconds))
    if steps > MAX_STEPS:
        smallest = math.ceil((end_s - start_s) / (MAX_STEPS - 1))
        raise BadRequest(
            f"step {step!r:.40} divides start..end into {steps} steps, more than {MAX_STEPS}; "
            f"use a step of at least {smallest}s or a shorter start..end"
        )
    return int(seconds)


def parse_group_by(group_by: str | None) -> tuple[str, ...]:
    text = (group_by or "").replace("\x00", "")
    keys = tuple(dict.fromkeys(key.strip() for key in text.split(",") if key.strip()))
    if len(keys) > MAX_GROUP_BY_KEYS:
        raise BadRequest(
            f"group_by names {len(keys)} keys; at most {MAX_GROUP_BY_KEYS}, comma-separated"
        )
    return keys


@router.get("/metrics", summary="The project's metrics: name, type, unit and series count")
async def read_metrics(
    principal: ReadPrincipal,
    services: ServicesDep,
    name: str | None = Query(None, description="keep names starting with this prefix"),
    limit: int = Query(1000, ge=1, le=MAX_METRICS_LIMIT),
) -> dict[str, Any]:
    found = await list_metrics(
        services.read_engine, principal.project_id, prefix=text_param(name), limit=limit
    )
    return {"metrics": found}


@router.get("/metrics/query", summary="One metric aggregated per step and group")
async def read_metric_query(
    request: Request,
    principal: ReadPrincipal,
    services: ServicesDep,
    name: str | None = Query(None, description="the metric (required)"),
    agg: str | None = Query(
        None, description=", ".join(AGGREGATIONS) + "; default rate for counters, else avg"
    ),
    step: str | None = Query(None, description="e.g. 30s, 1m, 5m; default (end - start) / 60"),
    start: str | None = None,
    end: str | None = None,
    group_by: str | None = Query(None, description="attribute keys, comma-separated"),
    metric_type: str | None = Query(
        None, alias="type", description="needed when the name has series of several types"
    ),
    limit: int = Query(100, ge=1, le=MAX_SERIES_LIMIT, description="most groups returned"),
) -> dict[str, Any]:
    name = text_param(name)
    if not name:
        raise BadRequest(
            "name is required: the metric to query, e.g. name=http.server.request.duration "
            "(GET /api/v1/metrics lists them)"
        )
    start_time, end_time = time_range(start, end)
    query = MetricQuery(
        name=name,
        step_s=parse_step(step, start_time, end_time),
        start=start_time,
        end=end_time,
        agg=choice("agg", agg, AGGREGATIONS),
        type=choice("type", metric_type, METRIC_TYPES),
        group_by=parse_group_by(group_by),
        attributes=attribute_filters(request),
        limit=limit,
    )
    try:
        return await query_metric(services.read_engine, principal.project_id, query)
    except MetricNotFound as error:
        raise NotFound(str(error)) from None
    except InvalidMetricQuery as error:
        raise BadRequest(str(error)) from None
