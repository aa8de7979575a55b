"""Log search: full text, level, service, trace and span filters, newest first, by cursor."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.errors import BadRequest
from app.api.logs_api import search_text
from app.api.params import choice
from app.api.traces import parse_trace_id
from app.domain.logs import LEVELS
from app.query.logs import LogFilters, search_logs
from app.ui.pages import (
    attribute_pairs,
    bounded_int,
    guarded,
    text,
    time_window,
)
from app.ui.search_pages import search_page
from app.ui.session import viewer_of

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


def _span_id(value: str | None) -> bytes | None:
    if not value:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise BadRequest(f"span_id {value!r:.40} must be 16 hex characters")
    return raw


@router.get("/ui/logs")
@guarded
async def logs_page(request: Request) -> Response:
    viewer = await viewer_of(request)
    query = request.query_params
    start, end, window = time_window(query)
    level = text(query, "level")
    trace_id = text(query, "trace_id")
    filters = LogFilters(
        text=search_text(text(query, "q")),
        level=choice("level", level.lower() if level else None, LEVELS),
        service=text(query, "service"),
        trace_id=parse_trace_id(trace_id.lower()) if trace_id else None,
        attributes=attribute_pairs(query),
        span_id=_span_id(text(query, "span_id")),
    )
    limit = bounded_int(query, "limit", PAGE_SIZE, 1, 1000)

    def search(engine: AsyncEngine, project: int) -> Awaitable[dict[str, Any]]:
        return search_logs(
            engine, project, filters, start=start, end=end, limit=limit,
            cursor=text(query, "cursor"),
        )  # fmt: skip

    return await search_page(
        request, viewer, section="logs", title="Logs", search=search, window=window,
        levels=LEVELS,
    )  # fmt: skip
