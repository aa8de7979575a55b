"""The reads behind the Jaeger query API (app/api/jaeger_api.py), on top of the trace,
search and services queries, plus the two that those do not answer: operations with
their span kinds, and service-to-service call counts.

Contracts:

- Services and operations are those seen in the last `CATALOG_LOOKBACK` (Jaeger's own
  default search lookback), from `app/query/services.py`; sorted by name.
- Search (`find_traces`) is `search_traces` (app/query/traces.py) paged until `limit`
  traces are found, each then read whole with `get_trace`; newest first by root span.
  Its window bounds the root span's start, and a trace matches when one of its spans that
  started in the window matches every filter. Jaeger's tags become span filters
  (`jaeger_span_filters`): `error`, `span.status`, `otel.status_code` and `span.kind`
  filter the span's status and kind as Jaeger's own reader does; `gen_ai.provider.name`,
  `gen_ai.operation.name` and `gen_ai.tool.name` filter the GenAI columns (so they match
  what the answer shows as tags); `resource.<key>` and any other key compare the span's
  attribute, or the resource's when the span lacks the key.
- Dependencies (`dependency_links`): for every span that started in `start..end` and whose
  parent (same trace, started at most `PARENT_SLACK` before `start`) belongs to another
  service, one call from the parent's service to the span's. Sorted by parent, child.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import spans
from app.domain.jaeger_params import parse_go_bool
from app.domain.records import SPAN_KIND_NAMES
from app.query.services import list_services, operation_counts
from app.query.traces import (
    MAX_TRACE_LIMIT,
    SpanFilters,
    fetch_planned_for_values,
    get_trace,
    kind_codes,
    search_traces,
)

CATALOG_LOOKBACK = timedelta(days=2)
# How long before the window a parent may have started and still be found: a long agent
# turn can call another service minutes after it began.
PARENT_SLACK = timedelta(hours=1)
# Traces read at once while a search fills its answer (each read takes a pooled connection).
CONCURRENT_TRACE_READS = 4
# Span kinds Jaeger's `spanKind` and `span.kind` accept (its spanKindFromString).
JAEGER_SPAN_KINDS = ("server", "client", "producer", "consumer", "internal")
_STATUS_TAG_VALUES = {"OK": "ok", "ERROR": "error"}
_GENAI_COLUMN_FILTERS = {
    "gen_ai.provider.name": "provider",
    "gen_ai.operation.name": "operation",
    "gen_ai.tool.name": "tool",
}
_UNSEARCHABLE = ("scope.name", "scope.version", "otel.scope.name", "otel.scope.version")


async def service_names(engine: AsyncEngine, project_id: int, now: datetime) -> list[str]:
    found = await list_services(engine, project_id, start=now - CATALOG_LOOKBACK, end=now)
    return [service["name"] for service in found]


async def operation_names(
    engine: AsyncEngine, project_id: int, service: str, now: datetime
) -> list[str]:
    found = await list_services(engine, project_id, start=now - CATALOG_LOOKBACK, end=now)
    return next((item["operations"] for item in found if item["name"] == service), [])


async def operations_with_kinds(
    engine: AsyncEngine, project_id: int, service: str, kind: str | None, now: datetime
) -> list[tuple[str, str]]:
    """`(name, kind)` of the service's spans in the lookback; unspecified counts as internal,
    as everywhere in this collector."""
    counted = operation_counts(project_id, now - CATALOG_LOOKBACK, now, service)
    query = select(counted.c.name, counted.c.kind).group_by(counted.c.name, counted.c.kind)
    if kind:
        query = query.where(counted.c.kind.in_(kind_codes(kind)))
    query = query.order_by(counted.c.name, counted.c.kind)
    found: dict[tuple[str, str], None] = {}
    for row in await fetch_planned_for_values(engine, query):
        name = SPAN_KIND_NAMES[row.kind] if 1 < row.kind < len(SPAN_KIND_NAMES) else "internal"
        found[(row.name, name)] = None
    return list(found)


async def dependency_links(
    engine: AsyncEngine,
    project_id: int,
    *,
    start: datetime,
    end: datetime,
    service: str | None = None,
) -> list[tuple[str, str, int]]:
    child = spans.alias("child")
    parent = spans.alias("parent")
    conditions = [
        child.c.project_id == project_id,
        child.c.start_time >= start,
        child.c.start_time <= end,
        child.c.parent_span_id.is_not(None),
        parent.c.service_name != child.c.service_name,
    ]
    if service:
        conditions.append(or_(parent.c.service_name == service, child.c.service_name == service))
    query = (
        select(parent.c.service_name, child.c.service_name, func.count())
        .select_from(
            child.join(
                parent,
                (parent.c.project_id == project_id)
                & (parent.c.trace_id == child.c.trace_id)
                & (parent.c.span_id == child.c.parent_span_id)
                # Bounds the parents to the window's partitions (and a little before).
                & (parent.c.start_time >= start - PARENT_SLACK)
                & (parent.c.start_time <= end),
            )
        )
        .where(*conditions)
        .group_by(parent.c.service_name, child.c.service_name)
        .order_by(parent.c.service_name, child.c.service_name)
    )
    rows = await fetch_planned_for_values(engine, query)
    return [(row[0], row[1], row[2]) for row in rows]


def jaeger_span_filters(
    *,
    service: str | None,
    operation: str | None,
    tags: dict[str, str],
    min_duration_ns: int | None,
    max_duration_ns: int | None,
) -> SpanFilters:
    """Jaeger's search parameters as span filters; ValueError names a tag it cannot serve."""
    fields: dict[str, Any] = {}

    def put(field: str, value: str, tag: str) -> None:
        if fields.get(field, value) != value:
            raise ValueError(f"tag {tag}={value} contradicts another tag of this search")
        fields[field] = value

    attributes: list[tuple[str, str]] = []
    for key, value in tags.items():
        if key == "error":
            if not parse_go_bool("tags", value):
                raise ValueError(
                    "error=false is not supported; search for span.status=ok or "
                    "span.status=unset instead"
                )
            put("status", "error", key)
        elif key in ("span.status", "otel.status_code"):
            put("status", _STATUS_TAG_VALUES.get(value.upper(), "unset"), key)
        elif key == "span.kind":
            if value.lower() not in JAEGER_SPAN_KINDS:
                raise ValueError(
                    f"span.kind {value!r} is not a span kind; use one of "
                    f"{', '.join(JAEGER_SPAN_KINDS)}"
                )
            put("kind", value.lower(), key)
        elif key in _GENAI_COLUMN_FILTERS:
            put(_GENAI_COLUMN_FILTERS[key], value, key)
        elif key in _UNSEARCHABLE:
            raise ValueError(f"searching by {key} is not supported")
        else:
            attributes.append((key.removeprefix("resource."), value))
    return SpanFilters(
        service=service or None,
        name=operation or None,
        min_duration_ms=None if min_duration_ns is None else min_duration_ns / 1_000_000,
        max_duration_ms=None if max_duration_ns is None else max_duration_ns / 1_000_000,
        attributes=tuple(attributes),
        resource_fallback=True,
        **fields,
    )


async def _read_traces(
    engine: AsyncEngine, project_id: int, trace_ids: list[bytes]
) -> list[dict[str, Any] | None]:
    gate = asyncio.Semaphore(CONCURRENT_TRACE_READS)

    async def read(trace_id: bytes) -> dict[str, Any] | None:
        async with gate:
            return await get_trace(engine, project_id, trace_id)

    return list(await asyncio.gather(*(read(trace_id) for trace_id in trace_ids)))


async def find_traces(
    engine: AsyncEngine,
    project_id: int,
    filters: SpanFilters,
    *,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[dict[str, Any]]:
    """Up to `limit` whole traces (as `get_trace` gives them), newest first."""
    trace_ids: list[bytes] = []
    cursor = None
    while len(trace_ids) < limit:
        page = await search_traces(
            engine,
            project_id,
            filters,
            start=start,
            end=end,
            limit=min(MAX_TRACE_LIMIT, limit - len(trace_ids)),
            cursor=cursor,
        )
        trace_ids += [bytes.fromhex(summary["trace_id"]) for summary in page["traces"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # A trace can leave between the search and its read (retention): it is left out.
    return [trace for trace in await _read_traces(engine, project_id, trace_ids) if trace]


async def traces_by_id(
    engine: AsyncEngine, project_id: int, trace_ids: list[bytes]
) -> list[tuple[bytes, dict[str, Any] | None]]:
    """Each id with its trace, or None when the project holds no such trace."""
    unique = list(dict.fromkeys(trace_ids))
    return list(zip(unique, await _read_traces(engine, project_id, unique), strict=True))
