"""Dashboard aggregates from per-minute rollups: overview (RED + LLM totals) and per model/tool.

Contract:
- A request is a SERVER span or a root span (see app/ingest/rollups.py); error_rate is
  the share of requests with status error.
- Windows are minute-aligned: the first minute is the one `now - window` falls in, so a
  window covers up to 59 s more than asked; rates divide by the window asked for.
- Latency percentiles merge per-minute log-bucket sketches (1% relative accuracy,
  app/domain/sketch.py); they are never averages of per-minute percentiles.
- Timeseries divide the window into about 60 steps of whole minutes; each array has one
  value per step, oldest first, and `timestamps` gives each step's start.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    and_,
    cast,
    extract,
    func,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import error_events, error_groups, span_rollups
from app.domain import sketch
from app.domain.times import iso
from app.ingest.rollups import LLM, REQUEST, TOOL

TARGET_STEPS = 60
r = span_rollups


def window_bounds(window_s: float, now: datetime | None = None) -> tuple[datetime, datetime, int]:
    """(origin, end, step_minutes): origin is the minute `now - window` falls in."""
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=window_s)
    origin = start.replace(second=0, microsecond=0)
    step_minutes = max(1, math.ceil(window_s / 60 / TARGET_STEPS))
    return origin, end, step_minutes


def _filters(
    project_id: int, category: int, origin: datetime, end: datetime, service: str | None
) -> ColumnElement[bool]:
    clauses = [
        r.c.project_id == project_id,
        r.c.category == category,
        r.c.minute >= origin,
        r.c.minute <= end,
    ]
    if service:
        clauses.append(r.c.service_name == service)
    return and_(*clauses)


def _sketch_buckets() -> Any:
    """The rollup rows' sketches as (idx, cnt) rows, to join laterally and sum per bucket."""
    return (
        func.unnest(r.c.sketch_index, r.c.sketch_count).table_valued("idx", "cnt").render_derived()
    )


def _percentiles(buckets: dict[int, int], *quantiles: float) -> list[float | None]:
    return [_round(sketch.quantile(buckets, q)) for q in quantiles]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


async def overview(
    engine: AsyncEngine,
    project_id: int,
    *,
    window_s: float,
    service: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    origin, end, step_minutes = window_bounds(window_s, now)
    step_s = step_minutes * 60
    steps = math.ceil((end - origin).total_seconds() / step_s)
    step = cast(func.floor(extract("epoch", r.c.minute - origin) / step_s), Integer).label("step")
    requests = _filters(project_id, REQUEST, origin, end, service)
    unnested = _sketch_buckets()
    async with engine.connect() as connection:
        per_step = (
            await connection.execute(
                select(
                    step,
                    func.sum(r.c.count).label("count"),
                    func.sum(r.c.error_count).label("errors"),
                    func.sum(r.c.duration_ms_sum).label("duration_ms"),
                )
                .where(requests)
                .group_by(step)
            )
        ).all()
        step_buckets = (
            await connection.execute(
                select(step, unnested.c.idx, func.sum(unnested.c.cnt).label("cnt"))
                .select_from(r)
                .join(unnested, true())
                .where(requests)
                .group_by(step, unnested.c.idx)
            )
        ).all()
        llm = (
            await connection.execute(
                select(
                    func.coalesce(func.sum(r.c.input_tokens), 0).label("input"),
                    func.coalesce(func.sum(r.c.output_tokens), 0).label("output"),
                    func.coalesce(func.sum(r.c.cache_read_tokens), 0).label("cached"),
                    func.coalesce(func.sum(r.c.cost_usd), 0.0).label("cost"),
                ).where(_filters(project_id, LLM, origin, end, service))
            )
        ).one()
        window_start = end - timedelta(seconds=window_s)
        new_groups = select(func.count()).where(
            error_groups.c.project_id == project_id,
            error_groups.c.first_seen >= window_start,
            error_groups.c.first_seen <= end,
        )
        events = select(func.count()).where(
            error_events.c.project_id == project_id,
            error_events.c.time >= window_start,
            error_events.c.time <= end,
        )
        if service:
            new_groups = new_groups.where(error_groups.c.service_name == service)
            events = events.where(error_events.c.service_name == service)
        new_group_count = await connection.scalar(new_groups)
        event_count = await connection.scalar(events)

    counts = [0] * steps
    errors = [0] * steps
    total_duration = 0.0
    for row in per_step:
        if 0 <= row.step < steps:
            counts[row.step] = int(row.count)
            errors[row.step] = int(row.errors)
        total_duration += row.duration_ms
    by_step: dict[int, dict[int, int]] = defaultdict(dict)
    overall: dict[int, int] = {}
    for row in step_buckets:
        by_step[row.step][row.idx] = int(row.cnt)
        overall[row.idx] = overall.get(row.idx, 0) + int(row.cnt)
    total = sum(counts)
    total_errors = sum(errors)
    p50, p95, p99 = _percentiles(overall, 0.5, 0.95, 0.99)
    return {
        "window": {"start": iso(end - timedelta(seconds=window_s)), "end": iso(end)},
        "requests": total,
        "request_rate_per_s": total / window_s if window_s else 0.0,
        "error_rate": _ratio(total_errors, total),
        "latency_ms": {
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "avg": _round(total_duration / total) if total else None,
        },
        "errors": {"new_groups": int(new_group_count or 0), "events": int(event_count or 0)},
        "llm": {
            "input_tokens": int(llm.input),
            "output_tokens": int(llm.output),
            "cost_usd": round(float(llm.cost), 6),
            "cache_hit_rate": _ratio(int(llm.cached), int(llm.input)),
        },
        "timeseries": {
            "step": f"{step_minutes}m",
            "timestamps": [
                iso(origin + timedelta(seconds=step_s * index)) for index in range(steps)
            ],
            "requests": counts,
            "errors": errors,
            "p95_ms": [_percentiles(by_step.get(index, {}), 0.95)[0] for index in range(steps)],
        },
    }


async def llm_usage(
    engine: AsyncEngine,
    project_id: int,
    *,
    window_s: float,
    service: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    origin, end, _ = window_bounds(window_s, now)
    unnested = _sketch_buckets()
    models_where = _filters(project_id, LLM, origin, end, service)
    tools_where = _filters(project_id, TOOL, origin, end, service)
    sums = (
        func.sum(r.c.count).label("count"),
        func.sum(r.c.error_count).label("errors"),
        func.sum(r.c.input_tokens).label("input"),
        func.sum(r.c.output_tokens).label("output"),
        func.sum(r.c.cache_read_tokens).label("cached"),
        func.sum(r.c.cost_usd).label("cost"),
    )
    async with engine.connect() as connection:
        model_rows = (
            await connection.execute(
                select(r.c.model, r.c.provider, *sums)
                .where(models_where)
                .group_by(r.c.model, r.c.provider)
            )
        ).all()
        model_buckets = (
            await connection.execute(
                select(r.c.model, r.c.provider, unnested.c.idx, func.sum(unnested.c.cnt))
                .select_from(r)
                .join(unnested, true())
                .where(models_where)
                .group_by(r.c.model, r.c.provider, unnested.c.idx)
            )
        ).all()
        tool_rows = (
            await connection.execute(select(r.c.tool, *sums).where(tools_where).group_by(r.c.tool))
        ).all()
        tool_buckets = (
            await connection.execute(
                select(r.c.tool, unnested.c.idx, func.sum(unnested.c.cnt))
                .select_from(r)
                .join(unnested, true())
                .where(tools_where)
                .group_by(r.c.tool, unnested.c.idx)
            )
        ).all()
    model_sketches: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for model, provider, index, count in model_buckets:
        model_sketches[(model, provider)][index] = int(count)
    tool_sketches: dict[str, dict[int, int]] = defaultdict(dict)
    for tool, index, count in tool_buckets:
        tool_sketches[tool][index] = int(count)
    models = []
    for row in sorted(model_rows, key=lambda row: (-float(row.cost or 0), row.model)):
        p50, p95 = _percentiles(model_sketches[(row.model, row.provider)], 0.5, 0.95)
        models.append(
            {
                "model": row.model or None,
                "provider": row.provider or None,
                "requests": int(row.count),
                "error_rate": _ratio(int(row.errors), int(row.count)),
                "input_tokens": int(row.input),
                "output_tokens": int(row.output),
                "cache_read_tokens": int(row.cached),
                "cache_hit_rate": _ratio(int(row.cached), int(row.input)),
                "cost_usd": round(float(row.cost), 6),
                "latency_ms": {"p50": p50, "p95": p95},
            }
        )
    tools = []
    for row in sorted(tool_rows, key=lambda row: (-int(row.count), row.tool)):
        p50, p95 = _percentiles(tool_sketches[row.tool], 0.5, 0.95)
        tools.append(
            {
                "tool": row.tool,
                "executions": int(row.count),
                "error_rate": _ratio(int(row.errors), int(row.count)),
                "latency_ms": {"p50": p50, "p95": p95},
            }
        )
    return {
        "window": {"start": iso(end - timedelta(seconds=window_s)), "end": iso(end)},
        "models": models,
        "tools": tools,
    }
