"""Services and their operations (span names) seen in a time range, with span counts.

Contract: services sorted by name, each with its operations sorted by name; a span counts
when it started in `start..end` (inclusive). Only the caller's project is read.

Counts come from the operation catalog (`span_operations`, one row per minute, service,
span name and kind, counted at ingest) for the whole minutes inside the window, and from
`spans` for the partial minutes at its two edges, so the answer is exactly what counting
the window's spans gives, and its cost follows the window's minutes and operations, not
its spans.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Subquery, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import span_operations, span_rollups, spans
from app.domain.records import STATUS_ERROR
from app.query.traces import fetch_planned_for_values

_MINUTE = timedelta(minutes=1)


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def whole_minutes(start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
    """[first, last) of the whole minutes inside start..end, or None when there are none."""
    first = _floor_minute(start)
    if first < start:
        first += _MINUTE
    last = _floor_minute(end)
    return (first, last) if first < last else None


def operation_counts(
    project_id: int, start: datetime, end: datetime, service: str | None = None
) -> Subquery:
    """(service_name, name, kind, span_count, error_count) rows whose sums per key are the
    counts of the spans that started in start..end; several rows may share a key."""
    s, o = spans.c, span_operations.c
    raw_columns = (
        s.service_name,
        s.name,
        s.kind,
        func.count().label("span_count"),
        func.count().filter(s.status_code == STATUS_ERROR).label("error_count"),
    )
    raw_scope = [s.project_id == project_id]
    if service is not None:
        raw_scope.append(s.service_name == service)
    minutes = whole_minutes(start, end)
    if minutes is None:
        edges = [(s.start_time >= start, s.start_time <= end)]
        parts = []
    else:
        first, last = minutes
        edges = [
            (s.start_time >= start, s.start_time < first),
            (s.start_time >= last, s.start_time <= end),
        ]
        catalog_scope = [o.project_id == project_id, o.minute >= first, o.minute < last]
        if service is not None:
            catalog_scope.append(o.service_name == service)
        parts = [
            select(o.service_name, o.name, o.kind, o.span_count, o.error_count).where(
                *catalog_scope
            )
        ]
    for edge in edges:
        parts.append(
            select(*raw_columns).where(*raw_scope, *edge).group_by(s.service_name, s.name, s.kind)
        )
    if len(parts) == 1:
        return parts[0].subquery("operations")
    return union_all(*parts).subquery("operations")


async def list_services(
    engine: AsyncEngine, project_id: int, *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    counted = operation_counts(project_id, start, end)
    query = (
        select(
            counted.c.service_name,
            counted.c.name,
            func.sum(counted.c.span_count).label("span_count"),
            func.sum(counted.c.error_count).label("error_count"),
        )
        .group_by(counted.c.service_name, counted.c.name)
        .order_by(counted.c.service_name, counted.c.name)
    )
    rows = await fetch_planned_for_values(engine, query)
    services: dict[str, dict[str, Any]] = {}
    for row in rows:
        service = services.get(row.service_name)
        if service is None:
            service = services[row.service_name] = {
                "name": row.service_name,
                "span_count": 0,
                "error_count": 0,
                "operations": [],
                "operation_stats": [],
            }
        span_count, error_count = int(row.span_count), int(row.error_count)
        service["span_count"] += span_count
        service["error_count"] += error_count
        service["operations"].append(row.name)
        service["operation_stats"].append(
            {"name": row.name, "span_count": span_count, "error_count": error_count}
        )
    return list(services.values())


async def rollup_service_names(
    engine: AsyncEngine, project_id: int, *, start: datetime, end: datetime
) -> list[str]:
    """Services with requests, LLM or tool calls in `start..end`, read from the per-minute
    rollups (cheap at any traffic: the UI's service pickers)."""
    query = (
        select(span_rollups.c.service_name)
        .where(
            span_rollups.c.project_id == project_id,
            span_rollups.c.minute >= start.replace(second=0, microsecond=0),
            span_rollups.c.minute <= end,
        )
        .distinct()
        .order_by(span_rollups.c.service_name)
    )
    return [row.service_name for row in await fetch_planned_for_values(engine, query)]
