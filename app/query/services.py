"""Services and their operations (span names) seen in a time range, with span counts.

Contract: services sorted by name, each with its operations sorted by name; a span counts
when it started in `start..end` (inclusive). Only the caller's project is read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import span_rollups, spans
from app.domain.records import STATUS_ERROR
from app.query.traces import fetch_planned_for_values


async def list_services(
    engine: AsyncEngine, project_id: int, *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    query = (
        select(
            spans.c.service_name,
            spans.c.name,
            func.count().label("span_count"),
            func.count().filter(spans.c.status_code == STATUS_ERROR).label("error_count"),
        )
        .where(
            spans.c.project_id == project_id,
            spans.c.start_time >= start,
            spans.c.start_time <= end,
        )
        .group_by(spans.c.service_name, spans.c.name)
        .order_by(spans.c.service_name, spans.c.name)
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
        service["span_count"] += row.span_count
        service["error_count"] += row.error_count
        service["operations"].append(row.name)
        service["operation_stats"].append(
            {"name": row.name, "span_count": row.span_count, "error_count": row.error_count}
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
