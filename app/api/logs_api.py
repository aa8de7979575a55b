"""GET /api/v1/logs: log search, newest first, by cursor."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query, Request

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import BadRequest
from app.api.params import choice, text_param, time_range
from app.api.traces import attribute_filters, parse_trace_id
from app.domain.logs import LEVELS
from app.query.logs import MAX_LOG_LIMIT, LogFilters, search_logs

router = APIRouter(prefix="/api/v1", tags=["query"])
MAX_SEARCH_CHARS = 1024
# PostgreSQL's tsquery parser keeps operators on a stack of 32: a longer run of `-` (NOT)
# fails the query ("tsquery stack too small"), so the API refuses it first.
_NOT_RUN = re.compile(r"-(?:\s*-){16}")


def search_text(q: str | None) -> str | None:
    """`q` checked for what full-text search can run: bounded length, bounded NOT runs."""
    text = text_param(q)
    if text is None:
        return None
    if len(text) > MAX_SEARCH_CHARS:
        raise BadRequest(f"q is {len(text)} characters long; at most {MAX_SEARCH_CHARS}")
    if _NOT_RUN.search(text):
        raise BadRequest("q has more than 16 '-' (not) in a row; a pair of them cancels out")
    return text


@router.get("/logs", summary="Search logs, newest first")
async def find_logs(
    request: Request,
    principal: ReadPrincipal,
    services: ServicesDep,
    q: str | None = Query(None, description='full-text: words, "a phrase", or, -word'),
    level: str | None = Query(None, description="minimum level: " + ", ".join(LEVELS)),
    service: str | None = None,
    trace_id: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int = Query(100, ge=1, le=MAX_LOG_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Logs in `start..end` (default: the last hour) matching every filter;
    `attr.<key>=<value>` (repeatable) compares a log attribute. Newest first; pass
    `next_cursor` back as `cursor` for the next page."""
    start_time, end_time = time_range(start, end)
    filters = LogFilters(
        text=search_text(q),
        level=choice("level", level.lower() if level else level, LEVELS),
        service=text_param(service),
        trace_id=parse_trace_id(trace_id) if trace_id else None,
        attributes=attribute_filters(request),
    )
    return await search_logs(
        services.read_engine,
        principal.project_id,
        filters,
        start=start_time,
        end=end_time,
        limit=limit,
        cursor=cursor or None,
    )
