"""How many error events happened in a time range: exact, at a cost that follows minutes.

Contract: the events of the project whose `time` is in `start..end` (inclusive), of one
service when given, counted as `error_events` holds them (a re-sent event once).

Whole minutes inside the range are read from `error_minutes` (counted at ingest with
exactly the events inserted, app/ingest/error_groups.py); the partial minutes at the
two edges from `error_events` itself, as the services list does with its operation
catalog (app/query/services.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import error_events, error_minutes
from app.query.services import whole_minutes


async def count_error_events(
    connection: AsyncConnection,
    project_id: int,
    start: datetime,
    end: datetime,
    service: str | None = None,
) -> int:
    e, m = error_events.c, error_minutes.c
    raw_scope = [e.project_id == project_id]
    if service is not None:
        raw_scope.append(e.service_name == service)
    minutes = whole_minutes(start, end)
    if minutes is None:
        edges = [(e.time >= start, e.time <= end)]
        parts = []
    else:
        first, last = minutes
        edges = [(e.time >= start, e.time < first), (e.time >= last, e.time <= end)]
        counted_scope = [m.project_id == project_id, m.minute >= first, m.minute < last]
        if service is not None:
            counted_scope.append(m.service_name == service)
        parts = [select(func.coalesce(func.sum(m.event_count), 0).label("n")).where(*counted_scope)]
    for edge in edges:
        parts.append(select(func.count().label("n")).where(*raw_scope, *edge))
    counts = union_all(*parts).subquery("counts") if len(parts) > 1 else parts[0].subquery()
    total = await connection.scalar(select(func.coalesce(func.sum(counts.c.n), 0)))
    return int(total or 0)
