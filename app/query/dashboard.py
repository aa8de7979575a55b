"""Dashboard aggregates from per-minute rollups: overview (RED + LLM totals) and per model/tool.

Contract:
- A request is a SERVER span or a root span (see app/ingest/rollups.py); error_rate is
  the share of requests with status error.
- Windows are minute-aligned: the first minute is the one `now - window` falls in, so a
  window covers up to 59 s more than asked; rates divide by the window asked for.
- Latency percentiles merge per-minute log-bucket sketches (1% relative accuracy,
  app/domain/sketch.py); they are never averages of per-minute percentiles. Every number
  is read from `SpanStats` (app/domain/span_stats.py), as span alert rules read theirs.
- Timeseries divide the window into about 60 steps of whole minutes; each array has one
  value per step, oldest first, and `timestamps` gives each step's start. Steps of an hour
  or more (windows from 60 h) are whole hours counted from the hour the window starts in,
  the first one starting at the window's start (so shorter): every whole hour then falls
  in one step, and long windows read hourly rollups (app/query/span_stats.py). Totals count
  every minute of the window, also the one holding `now` when `now` ends the last step
  exactly (a minute no step covers). `llm_timeseries` gives tokens and cost per model on
  the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, extract, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import error_groups, span_rollups
from app.domain.span_stats import SpanStats
from app.domain.times import iso
from app.ingest.rollups import LLM, REQUEST, TOOL
from app.query.error_counts import count_error_events
from app.query.span_stats import Key, rollup_stats

TARGET_STEPS = 60
r = span_rollups


def window_bounds(window_s: float, now: datetime | None = None) -> tuple[datetime, datetime, int]:
    """(origin, end, step_minutes): origin is the minute `now - window` falls in."""
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=window_s)
    origin = start.replace(second=0, microsecond=0)
    return origin, end, _step_minutes(window_s)


def _step_minutes(window_s: float) -> int:
    minutes = max(1, math.ceil(window_s / 60 / TARGET_STEPS))
    # From an hour up, steps are whole hours on hour boundaries: hourly rollups answer them.
    return minutes if minutes < 60 else math.ceil(minutes / 60) * 60


def _anchor(origin: datetime, step_minutes: int) -> datetime:
    """Where steps are counted from: the window's first minute, or for steps of whole
    hours the hour it falls in (then the first step starts at `origin`, and is shorter)."""
    return origin.replace(minute=0) if step_minutes >= 60 else origin


def _reader(
    connection: AsyncConnection,
    project_id: int,
    window_s: float,
    service: str | None,
    end: datetime,
) -> Callable[..., Awaitable[dict[Key, SpanStats]]]:
    """`read(category, keys=..., sketches=...)`: rollup stats of the window up to `end`."""
    origin, _, _ = window_bounds(window_s, end)
    conditions = [r.c.service_name == service] if service else []

    async def read(category: int, **options: Any) -> dict[Key, SpanStats]:
        return await rollup_stats(
            connection, project_id, category, origin, end, conditions=conditions, **options
        )

    return read


@dataclass(frozen=True)
class Timeline:
    """A window's steps: `end`, how many, each one's start (`timestamps`), the rollup row's
    step index as a SQL expression, and whether the steps are whole hours (`hourly`)."""

    end: datetime
    steps: int
    step: Any
    timestamps: list[str]
    label: str
    hourly: bool


def _timeline(window_s: float, now: datetime | None) -> Timeline:
    origin, end, step_minutes = window_bounds(window_s, now)
    step_s = step_minutes * 60
    anchor = _anchor(origin, step_minutes)
    steps = math.ceil((end - anchor).total_seconds() / step_s)
    step = cast(func.floor(extract("epoch", r.c.minute - anchor) / step_s), Integer).label("step")
    timestamps = [
        iso(max(origin, anchor + timedelta(seconds=step_s * index))) for index in range(steps)
    ]
    # Steps of whole hours: each whole hour of the window lies in one step.
    return Timeline(end, steps, step, timestamps, f"{step_minutes}m", step_minutes >= 60)


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
    timeline = _timeline(window_s, now)
    end, steps = timeline.end, timeline.steps
    async with engine.connect() as connection:
        read = _reader(connection, project_id, window_s, service, end)
        per_step = await read(REQUEST, keys=[timeline.step], hourly=timeline.hourly)
        llm = (await read(LLM, sketches=False, hourly=True)).get((), SpanStats())
        window_start = end - timedelta(seconds=window_s)
        new_groups = select(func.count()).where(
            error_groups.c.project_id == project_id,
            error_groups.c.first_seen >= window_start,
            error_groups.c.first_seen <= end,
        )
        if service:
            new_groups = new_groups.where(error_groups.c.service_name == service)
        new_group_count = await connection.scalar(new_groups)
        # Per minute from error_minutes, the edge minutes from error_events: exact.
        event_count = await count_error_events(
            connection, project_id, window_start, end, service or None
        )

    empty = SpanStats()
    by_step = [per_step.get((index,), empty) for index in range(steps)]
    total = SpanStats()
    for stats in per_step.values():
        total.add(stats)
    return {
        "window": {"start": iso(end - timedelta(seconds=window_s)), "end": iso(end)},
        "requests": total.count,
        "request_rate_per_s": total.rate(window_s),
        "error_rate": total.error_rate() or 0.0,
        "latency_ms": {
            "p50": total.percentile(0.5),
            "p95": total.percentile(0.95),
            "p99": total.percentile(0.99),
            "avg": total.avg_duration_ms(),
        },
        "errors": {"new_groups": int(new_group_count or 0), "events": int(event_count or 0)},
        "llm": {
            "input_tokens": llm.input_tokens,
            "output_tokens": llm.output_tokens,
            "cost_usd": round(llm.cost_usd, 6),
            "cache_hit_rate": _ratio(llm.cache_read_tokens, llm.input_tokens),
        },
        "timeseries": {
            "step": timeline.label,
            "timestamps": timeline.timestamps,
            "requests": [stats.count for stats in by_step],
            "errors": [stats.errors for stats in by_step],
            "p50_ms": [stats.percentile(0.5) for stats in by_step],
            "p95_ms": [stats.percentile(0.95) for stats in by_step],
        },
    }


async def llm_timeseries(
    engine: AsyncEngine,
    project_id: int,
    *,
    window_s: float,
    service: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Tokens and cost per model, on the steps `overview` uses (the UI's per-model charts).

    `models` is ordered by cost over the window, most expensive first; each has one value
    per step (0 where the model made no call).
    """
    timeline = _timeline(window_s, now)
    steps = timeline.steps
    async with engine.connect() as connection:
        read = _reader(connection, project_id, window_s, service, timeline.end)
        found = await read(
            LLM, keys=[timeline.step, r.c.model], sketches=False, hourly=timeline.hourly
        )
    per_model: dict[str, list[SpanStats]] = {}
    for (index, model), stats in found.items():
        if 0 <= index < steps:
            per_model.setdefault(model or "", [SpanStats() for _ in range(steps)])[index] = stats
    ordered = sorted(
        per_model.items(), key=lambda item: (-sum(s.cost_usd for s in item[1]), item[0])
    )
    return {
        "step": timeline.label,
        "timestamps": timeline.timestamps,
        "models": [
            {
                "model": model or None,
                "input_tokens": [stats.input_tokens for stats in series],
                "output_tokens": [stats.output_tokens for stats in series],
                "cost_usd": [round(stats.cost_usd, 6) for stats in series],
            }
            for model, series in ordered
        ],
    }


async def llm_usage(
    engine: AsyncEngine,
    project_id: int,
    *,
    window_s: float,
    service: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    end = now or datetime.now(UTC)
    async with engine.connect() as connection:
        read = _reader(connection, project_id, window_s, service, end)
        by_model = await read(LLM, keys=[r.c.model, r.c.provider], hourly=True)
        by_tool = await read(TOOL, keys=[r.c.tool], hourly=True)
    models = []
    for (model, provider), stats in sorted(
        by_model.items(), key=lambda item: (-item[1].cost_usd, item[0][0])
    ):
        models.append(
            {
                "model": model or None,
                "provider": provider or None,
                "requests": stats.count,
                "error_rate": stats.error_rate() or 0.0,
                "input_tokens": stats.input_tokens,
                "output_tokens": stats.output_tokens,
                "cache_read_tokens": stats.cache_read_tokens,
                "cache_hit_rate": _ratio(stats.cache_read_tokens, stats.input_tokens),
                "cost_usd": round(stats.cost_usd, 6),
                "latency_ms": {"p50": stats.percentile(0.5), "p95": stats.percentile(0.95)},
            }
        )
    tools = []
    for (tool,), stats in sorted(by_tool.items(), key=lambda item: (-item[1].count, item[0][0])):
        tools.append(
            {
                "tool": tool,
                "executions": stats.count,
                "error_rate": stats.error_rate() or 0.0,
                "latency_ms": {"p50": stats.percentile(0.5), "p95": stats.percentile(0.95)},
            }
        )
    return {
        "window": {"start": iso(end - timedelta(seconds=window_s)), "end": iso(end)},
        "models": models,
        "tools": tools,
    }
