"""GET /api/v1/traces (search) and GET /api/v1/traces/{trace_id}.

Also the parameter parsers the other search endpoints share: ids, `attr.<key>=<value>`.
"""

from __future__ import annotations

import binascii
import math
from typing import Any

from fastapi import APIRouter, Query, Request

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import BadRequest, NotFound
from app.api.params import choice, text_param, time_range
from app.domain.records import STATUS_NAMES
from app.query.traces import MAX_TRACE_LIMIT, SpanFilters, get_trace, search_traces

router = APIRouter(prefix="/api/v1", tags=["query"])
ATTRIBUTE_PREFIX = "attr."
MAX_ATTRIBUTE_FILTERS = 20


def parse_trace_id(value: str, name: str = "trace_id") -> bytes:
    try:
        raw = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise BadRequest(f"{name} {value!r:.80} must be 32 hex characters")
    return raw


def attribute_filters(request: Request) -> tuple[tuple[str, str], ...]:
    """Every `attr.<key>=<value>` query parameter, in order; repeated keys all apply."""
    found = []
    for name, value in request.query_params.multi_items():
        if not name.startswith(ATTRIBUTE_PREFIX):
            continue
        key, value = name[len(ATTRIBUTE_PREFIX) :].replace("\x00", ""), value.replace("\x00", "")
        if not key:
            raise BadRequest(
                "attr.<key>=<value>: the attribute key is empty, e.g. attr.tool=search"
            )
        found.append((key, value))
    if len(found) > MAX_ATTRIBUTE_FILTERS:
        raise BadRequest(
            f"at most {MAX_ATTRIBUTE_FILTERS} attr.<key>=<value> filters, got {len(found)}"
        )
    return tuple(found)


def milliseconds(name: str, value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise BadRequest(
            f"{name} {value!r:.80} is not accepted; use a number of milliseconds >= 0, "
            "e.g. 250 or 12.5"
        )
    return number


@router.get("/traces", summary="Search traces, newest first")
async def find_traces(
    request: Request,
    principal: ReadPrincipal,
    services: ServicesDep,
    service: str | None = None,
    name: str | None = None,
    status: str | None = None,
    min_duration_ms: str | None = None,
    max_duration_ms: str | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int = Query(20, ge=1, le=MAX_TRACE_LIMIT),
    cursor: str | None = None,
) -> dict[str, Any]:
    """Traces whose root span started in `start..end` (default: the last hour) and that
    have one span matching every filter; `attr.<key>=<value>` (repeatable) compares a span
    attribute. Newest first; pass `next_cursor` back as `cursor` for the next page."""
    start_time, end_time = time_range(start, end)
    filters = SpanFilters(
        service=text_param(service),
        name=text_param(name),
        status=choice("status", status, STATUS_NAMES),
        min_duration_ms=milliseconds("min_duration_ms", min_duration_ms),
        max_duration_ms=milliseconds("max_duration_ms", max_duration_ms),
        attributes=attribute_filters(request),
    )
    low, high = filters.min_duration_ms, filters.max_duration_ms
    if low is not None and high is not None and low > high:
        raise BadRequest("min_duration_ms must not be greater than max_duration_ms")
    return await search_traces(
        services.read_engine,
        principal.project_id,
        filters,
        start=start_time,
        end=end_time,
        limit=limit,
        cursor=cursor or None,
    )


@router.get("/traces/{trace_id}", summary="One trace with all its spans")
async def read_trace(trace_id: str, principal: ReadPrincipal, services: ServicesDep) -> Any:
    trace = await get_trace(services.read_engine, principal.project_id, parse_trace_id(trace_id))
    if trace is None:
        raise NotFound(f"no trace {trace_id.lower()} in this project")
    return trace
