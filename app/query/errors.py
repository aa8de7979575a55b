"""Reading and triaging error groups.

Contract: groups are listed by `sort` descending (then fingerprint, for a stable order)
among those seen in `start..end` (last_seen >= start and first_seen <= end); a
fingerprint unknown in the caller's project is `None` (404).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import error_events, error_groups
from app.domain.times import iso

SORTS = {
    "last_seen": error_groups.c.last_seen,
    "first_seen": error_groups.c.first_seen,
    "count": error_groups.c.count,
}
STATUSES = ("unresolved", "resolved", "ignored")


def _group(row: Any) -> dict[str, Any]:
    return {
        "fingerprint": row.fingerprint,
        "type": row.type,
        "message": row.message,
        "service": row.service_name,
        "culprit": row.culprit,
        "status": row.status,
        "count": row.count,
        "first_seen": iso(row.first_seen),
        "last_seen": iso(row.last_seen),
        "regressed": row.regressed,
        "resolved_at": iso(row.resolved_at) if row.resolved_at else None,
    }


async def list_groups(
    engine: AsyncEngine,
    project_id: int,
    *,
    start: datetime,
    end: datetime,
    status: str | None = None,
    service: str | None = None,
    sort: str = "last_seen",
    limit: int = 50,
) -> list[dict[str, Any]]:
    query = select(error_groups).where(
        error_groups.c.project_id == project_id,
        error_groups.c.last_seen >= start,
        error_groups.c.first_seen <= end,
    )
    if status:
        query = query.where(error_groups.c.status == status)
    if service:
        query = query.where(error_groups.c.service_name == service)
    query = query.order_by(SORTS[sort].desc(), error_groups.c.fingerprint).limit(limit)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [_group(row) for row in rows]


async def get_group(
    engine: AsyncEngine,
    project_id: int,
    fingerprint: str,
    *,
    start: datetime,
    end: datetime,
    events_limit: int = 20,
) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(error_groups).where(
                    error_groups.c.project_id == project_id,
                    error_groups.c.fingerprint == fingerprint,
                )
            )
        ).first()
        if row is None:
            return None
        in_group = and_(
            error_events.c.project_id == project_id, error_events.c.fingerprint == fingerprint
        )
        events = (
            await connection.execute(
                select(error_events)
                .where(in_group)
                .order_by(error_events.c.time.desc())
                .limit(events_limit)
            )
        ).all()
        hour = func.date_trunc("hour", error_events.c.time).label("hour")
        hourly = (
            await connection.execute(
                select(hour, func.count().label("events"))
                .where(in_group, error_events.c.time >= start, error_events.c.time <= end)
                .group_by(literal_column("hour"))
                .order_by(literal_column("hour"))
            )
        ).all()
    group = _group(row)
    group["events"] = [
        {
            "event_id": event.event_id.hex(),
            "time": iso(event.time),
            "service": event.service_name,
            "type": event.type,
            "message": event.message,
            "stacktrace": event.stacktrace,
            "culprit": event.culprit,
            "source": event.source,
            "trace_id": event.trace_id.hex() if event.trace_id else None,
            "span_id": event.span_id.hex() if event.span_id else None,
            "attributes": event.attributes,
        }
        for event in events
    ]
    group["hourly_counts"] = [{"hour": iso(item.hour), "count": item.events} for item in hourly]
    return group


async def set_status(
    engine: AsyncEngine, project_id: int, fingerprint: str, status: str
) -> dict[str, Any] | None:
    values: dict[str, Any] = {"status": status}
    if status == "resolved":
        values.update(resolved_at=func.now(), regressed=False)
    elif status == "unresolved":
        values.update(resolved_at=None)
    async with engine.begin() as connection:
        row = (
            await connection.execute(
                update(error_groups)
                .where(
                    error_groups.c.project_id == project_id,
                    error_groups.c.fingerprint == fingerprint,
                )
                .values(**values)
                .returning(*error_groups.c)
            )
        ).first()
    return _group(row) if row else None


async def events_in_trace(
    engine: AsyncEngine, project_id: int, trace_id: bytes, *, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The error events of one trace in `start..end` (the trace's span): which span raised
    what, and its group (the trace page links each span to its error group)."""
    query = (
        select(
            error_events.c.fingerprint,
            error_events.c.span_id,
            error_events.c.type,
            error_events.c.message,
            error_events.c.time,
        )
        .where(
            error_events.c.project_id == project_id,
            error_events.c.time >= start,
            error_events.c.time <= end,
            error_events.c.trace_id == trace_id,
        )
        .order_by(error_events.c.time)
        .limit(200)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [
        {
            "fingerprint": row.fingerprint,
            "span_id": row.span_id.hex() if row.span_id else None,
            "type": row.type,
            "message": row.message,
            "time": iso(row.time),
        }
        for row in rows
    ]
