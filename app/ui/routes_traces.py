"""Trace search (paged by cursor) and the trace page with its span waterfall."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.errors import BadRequest, NotFound
from app.api.params import choice
from app.api.traces import milliseconds, parse_trace_id
from app.domain.records import STATUS_NAMES
from app.query.errors import events_in_trace
from app.query.logs import LogFilters, search_logs
from app.query.traces import SpanFilters, get_trace, search_traces
from app.ui import waterfall
from app.ui.pages import (
    attribute_pairs,
    bounded_int,
    guarded,
    services_of,
    text,
    time_window,
)
from app.ui.render import render
from app.ui.search_pages import search_page
from app.ui.session import viewer_of

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 25
# Logs of a trace are looked for from a little before its first span to a little after
# its end (a log written just after the span closed still belongs to it).
LOG_SLACK = timedelta(minutes=5)
MAX_TRACE_LOGS = 500


@router.get("/ui/traces")
@guarded
async def search(request: Request) -> Response:
    viewer = await viewer_of(request)
    query = request.query_params
    start, end, window = time_window(query)
    filters = SpanFilters(
        service=text(query, "service"),
        name=text(query, "operation"),
        status=choice("status", text(query, "status"), STATUS_NAMES),
        min_duration_ms=milliseconds("min_duration_ms", text(query, "min_duration_ms")),
        max_duration_ms=milliseconds("max_duration_ms", text(query, "max_duration_ms")),
        attributes=attribute_pairs(query),
    )
    low, high = filters.min_duration_ms, filters.max_duration_ms
    if low is not None and high is not None and low > high:
        raise BadRequest("min_duration_ms must not be greater than max_duration_ms")
    limit = bounded_int(query, "limit", PAGE_SIZE, 1, 100)

    def search_in(engine: AsyncEngine, project: int) -> Awaitable[dict[str, Any]]:
        return search_traces(
            engine, project, filters, start=start, end=end, limit=limit,
            cursor=text(query, "cursor"),
        )  # fmt: skip

    return await search_page(
        request, viewer, section="traces", title="Traces", search=search_in, window=window,
        statuses=STATUS_NAMES,
    )  # fmt: skip


@router.get("/ui/traces/{trace_id}")
@guarded
async def trace_page(request: Request, trace_id: str) -> Response:
    viewer = await viewer_of(request)
    raw_id = parse_trace_id(trace_id.lower())
    engine = services_of(request).read_engine
    project = viewer.principal.project_id
    trace = await get_trace(engine, project, raw_id)
    if trace is None:
        raise NotFound(f"no trace {trace_id.lower():.40} in this project")
    first = datetime.fromisoformat(trace["start_time"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(trace["end_time"].replace("Z", "+00:00"))
    logs, errors = await asyncio.gather(
        search_logs(
            engine,
            project,
            LogFilters(trace_id=raw_id),
            start=first - LOG_SLACK,
            end=min(last + LOG_SLACK, datetime.now(UTC) + LOG_SLACK),
            limit=MAX_TRACE_LOGS,
        ),
        events_in_trace(engine, project, raw_id, start=first - LOG_SLACK, end=last + LOG_SLACK),
    )
    logs_by_span: dict[str | None, list[dict]] = {}
    for log in reversed(logs["logs"]):  # oldest first under each span
        logs_by_span.setdefault(log.get("span_id"), []).append(log)
    errors_by_span: dict[str | None, list[dict]] = {}
    for event in errors:
        errors_by_span.setdefault(event["span_id"], []).append(event)
    selected = (request.query_params.get("span") or "").lower()
    return render(
        request,
        "trace.html",
        viewer,
        section="traces",
        title=f"Trace {trace['trace_id'][:12]}",
        trace=trace,
        waterfall=waterfall.build(trace),
        logs_by_span=logs_by_span,
        log_count=len(logs["logs"]),
        errors_by_span=errors_by_span,
        selected=selected,
    )
