"""Which spans an SLO counts, the queries that count them per minute, and how the counts
are written (`slo_minutes`, and `slo_hours` from them in the same transaction).

Events are the spans of the SLO's service that match its filters (by default requests:
SERVER or root spans, the dashboards' definition); good ones have no error status
(availability) or a duration at or below `threshold_ms` (latency, floored to whole
nanoseconds). A span counts in the UTC minute it started. Writes set (never add) a
minute's counts, so counting a minute again is harmless; minutes without events have no
row, and counting never deletes one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    and_,
    func,
    literal_column,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.partitions import PartitionManager
from app.db.tables import slo_hours, slo_minutes, spans
from app.domain.error_budget import hour_floor
from app.domain.records import KIND_SERVER, SPAN_KIND_NAMES, STATUS_ERROR
from app.domain.slos import SloSpec
from app.query.traces import attribute_condition

# Rows per upsert statement: 4 parameters a row, far below PostgreSQL's 32,767.
UPSERT_ROWS = 5000
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SloMinute = tuple[int, datetime, int, int]  # (slo_id, minute, good, total)


def event_filter(spec: SloSpec) -> ColumnElement[bool]:
    """Which spans of the SLO's service are its events (the SLI's denominator)."""
    s = spans.c
    filters = spec.sli.filters
    found: list[ColumnElement[bool]] = []
    if filters.category == "request":
        found.append(or_(s.kind == KIND_SERVER, s.is_root))
    elif filters.category == "tool":
        found.append(s.gen_ai_tool_name.is_not(None))
    elif filters.category == "llm":
        found.append(s.gen_ai_tool_name.is_(None))
        found.append(
            or_(
                s.gen_ai_model.is_not(None),
                s.gen_ai_input_tokens.is_not(None),
                s.gen_ai_output_tokens.is_not(None),
            )
        )
    equal = {
        s.name: filters.name,
        s.gen_ai_model: filters.model,
        s.gen_ai_provider: filters.provider,
        s.gen_ai_tool_name: filters.tool,
        s.gen_ai_operation: filters.operation,
    }
    found.extend(column == value for column, value in equal.items() if value is not None)
    if filters.kind is not None:
        found.append(s.kind == SPAN_KIND_NAMES.index(filters.kind))
    for key, value in filters.attributes.items():
        found.append(
            or_(
                attribute_condition(s.attributes, key, value),
                attribute_condition(s.resource_attributes, key, value),
            )
        )
    return and_(true(), *found)


def good_condition(spec: SloSpec) -> ColumnElement[bool]:
    if spec.sli.type == "availability":
        return spans.c.status_code != STATUS_ERROR
    assert spec.sli.threshold_ms is not None
    limit_ns = int(
        (Decimal(repr(spec.sli.threshold_ms)) * 1_000_000).to_integral_value(ROUND_FLOOR)
    )
    return spans.c.duration_ns <= limit_ns


def _minute() -> Any:
    # Unit and zone as SQL literals: GROUP BY must repeat the select's expression exactly.
    return func.date_trunc(literal_column("'minute'"), spans.c.start_time, literal_column("'UTC'"))


def count_query(project_id: int, spec: SloSpec, start: datetime, end: datetime) -> Any:
    """Good and total events per minute that starts in [start, end), for one SLO."""
    return (
        select(
            _minute().label("minute"),
            func.count().filter(good_condition(spec)),
            func.count(),
        )
        .where(
            spans.c.project_id == project_id,
            spans.c.service_name == spec.service,
            spans.c.start_time >= start,
            spans.c.start_time < end,
            event_filter(spec),
        )
        .group_by(_minute())
    )


def group_count_query(
    project_id: int, service: str, slos: Sequence[tuple[SloSpec, datetime]], end: datetime
) -> Any:
    """Several SLOs of one service in one scan: per minute, columns good_i and total_i for
    the i-th (spec, start), each counting its events from its own start to `end`."""
    columns: list[Any] = [_minute().label("minute")]
    matches = []
    for spec, start in slos:
        events = and_(event_filter(spec), spans.c.start_time >= start)
        columns.append(func.count().filter(and_(events, good_condition(spec))))
        columns.append(func.count().filter(events))
        matches.append(events)
    return (
        select(*columns)
        .where(
            spans.c.project_id == project_id,
            spans.c.service_name == service,
            spans.c.start_time >= min(start for _, start in slos),
            spans.c.start_time < end,
            or_(*matches),
        )
        .group_by(_minute())
    )


def split_group_rows(rows: Sequence[Any], slo_ids: Sequence[int]) -> list[SloMinute]:
    """A group query's rows → each SLO's minutes with events."""
    found: list[SloMinute] = []
    for row in rows:
        for index, slo_id in enumerate(slo_ids):
            total = row[2 + 2 * index]
            if total:
                found.append((slo_id, row[0], row[1 + 2 * index], total))
    return found


async def ensure_days(partitions: PartitionManager, counts: Sequence[SloMinute]) -> None:
    """Create the slo_minutes days the counts fall on. Call it before the transaction
    writes to slo_minutes: another connection creates them, and could wait on this one."""
    days = {minute.astimezone(UTC).date() for _, minute, _, _ in counts}
    if days:
        await partitions.ensure("slo_minutes", days)


async def write_counts(
    connection: AsyncConnection, counts: Sequence[SloMinute], start: datetime, end: datetime
) -> None:
    """Set the minutes counted in [start, end) (of any SLOs), then the hours they touch."""
    if not counts:
        return
    for offset in range(0, len(counts), UPSERT_ROWS):
        statement = insert(slo_minutes).values(
            [
                {"slo_id": slo_id, "minute": minute, "good": good, "total": total}
                for slo_id, minute, good, total in counts[offset : offset + UPSERT_ROWS]
            ]
        )
        await connection.execute(_setting_counts(statement, slo_minutes.c.minute))
    await rebuild_hours(connection, sorted({slo_id for slo_id, _, _, _ in counts}), start, end)


def _setting_counts(statement: Insert, time: Column[datetime]) -> Insert:
    """The upsert that sets (never adds) a row's counts, and leaves equal rows untouched."""
    table = statement.table
    return statement.on_conflict_do_update(
        index_elements=[table.c.slo_id, time],
        set_={"good": statement.excluded.good, "total": statement.excluded.total},
        where=tuple_(table.c.good, table.c.total)
        != tuple_(statement.excluded.good, statement.excluded.total),
    )


async def rebuild_hours(
    connection: AsyncConnection, slo_ids: Sequence[int], start: datetime, end: datetime
) -> None:
    """Set the hourly sums of these SLOs for every hour [start, end) touches, from minutes."""
    hour = func.date_trunc(literal_column("'hour'"), slo_minutes.c.minute, literal_column("'UTC'"))
    sums = (
        select(
            slo_minutes.c.slo_id,
            hour,
            func.sum(slo_minutes.c.good),
            func.sum(slo_minutes.c.total),
        )
        .where(
            slo_minutes.c.slo_id.in_(slo_ids),
            slo_minutes.c.minute >= hour_floor(start),
            slo_minutes.c.minute < hour_floor(end - MINUTE) + HOUR,
        )
        .group_by(slo_minutes.c.slo_id, hour)
    )
    statement = insert(slo_hours).from_select(["slo_id", "hour", "good", "total"], sums)
    await connection.execute(_setting_counts(statement, slo_hours.c.hour))
