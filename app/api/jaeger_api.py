"""The Jaeger query HTTP API that Grafana's Jaeger data source and the Jaeger UI call.

GET /api/services, /api/services/{service}/operations, /api/operations, /api/traces,
/api/traces/{traceID} and /api/dependencies, answered in Jaeger's JSON model
(app/domain/jaeger_model.py) from the collector's own reads (app/query/jaeger_reads.py),
with the same keys as the rest of the API (scope `read`). Parameters are parsed as Jaeger
parses them (app/domain/jaeger_params.py). Every failure, authentication included, is
answered in Jaeger's error shape: `{"data": null, ..., "errors": [{"code", "msg"}]}`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from app.api.deps import ReadPrincipal, ServicesDep
from app.api.errors import ApiError, BadRequest, NotFound
from app.api.traces import MAX_ATTRIBUTE_FILTERS, text_param
from app.domain import jaeger_model
from app.domain.jaeger_params import (
    format_trace_id,
    from_micros,
    parse_duration_param,
    parse_error,
    parse_go_bool,
    parse_go_int,
    parse_tags,
    parse_trace_id,
)
from app.ingest.writer import is_unavailable
from app.query import jaeger_reads
from app.query.traces import get_trace

# Jaeger's defaults (its default_params.go and query_parser.go).
DEFAULT_SEARCH_LIMIT = 100
DEFAULT_SEARCH_LOOKBACK = timedelta(days=2)
DEFAULT_DEPENDENCY_LOOKBACK_MS = 24 * 3600 * 1000
# Each trace of a search is read whole; a larger answer is refused rather than built.
MAX_SEARCH_LIMIT = 1000
T = TypeVar("T")


class JaegerRoute(APIRoute):
    """Answers this router's failures, dependencies' included, in Jaeger's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as error:
                return _failure(error.status, error.message, error.headers)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                retry_after = str(request.app.state.settings.retry_after_s)
                message = "the database is unavailable; retry later"
                return _failure(503, message, {"Retry-After": retry_after})

        return answer


def _failure(status: int, message: str, headers: dict[str, str]) -> JSONResponse:
    body = jaeger_model.error_envelope(status, message)
    return JSONResponse(body, status_code=status, headers=headers)


router = APIRouter(prefix="/api", tags=["jaeger"], route_class=JaegerRoute)


def _parsed(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _micros_param(request: Request, name: str, default: datetime) -> datetime:
    text = request.query_params.get(name)
    if not text:
        return default
    return _parsed(lambda: from_micros(name, parse_go_int(name, text)))


@router.get("/services", summary="Jaeger: services seen in the last two days")
async def jaeger_services(principal: ReadPrincipal, services: ServicesDep) -> dict[str, Any]:
    now = datetime.now(UTC)
    names = await jaeger_reads.service_names(services.read_engine, principal.project_id, now)
    return jaeger_model.envelope(names, total=len(names))


@router.get("/services/{service:path}/operations", summary="Jaeger: a service's operations")
async def jaeger_service_operations(
    service: str, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    now = datetime.now(UTC)
    names = await jaeger_reads.operation_names(
        services.read_engine, principal.project_id, text_param(service) or "", now
    )
    return jaeger_model.envelope(names, total=len(names))


@router.get("/operations", summary="Jaeger: a service's operations with their span kinds")
async def jaeger_operations(
    principal: ReadPrincipal,
    services: ServicesDep,
    service: str | None = None,
    span_kind: str | None = Query(None, alias="spanKind"),
) -> dict[str, Any]:
    if not text_param(service):
        raise BadRequest("parameter 'service' is required")
    if span_kind and span_kind not in jaeger_reads.JAEGER_SPAN_KINDS:
        raise BadRequest(str(parse_error("spanKind", f"unsupported span kind: '{span_kind}'")))
    found = await jaeger_reads.operations_with_kinds(
        services.read_engine,
        principal.project_id,
        text_param(service) or "",
        span_kind or None,
        datetime.now(UTC),
    )
    return jaeger_model.envelope(jaeger_model.operations(found), total=len(found))


@router.get("/traces/{trace_id}", summary="Jaeger: one trace with all its spans")
async def jaeger_trace(
    trace_id: str, request: Request, principal: ReadPrincipal, services: ServicesDep
) -> dict[str, Any]:
    raw_id = _parsed(lambda: parse_trace_id(trace_id))
    # Jaeger reads start/end (microseconds) as a hint for where to look; the whole trace is
    # read here whatever they say, but a malformed one is still refused as Jaeger does.
    now = datetime.now(UTC)
    _micros_param(request, "start", now)
    _micros_param(request, "end", now)
    _parsed(lambda: parse_go_bool("raw", request.query_params.get("raw") or "false"))
    trace = await get_trace(services.read_engine, principal.project_id, raw_id)
    if trace is None:
        raise NotFound("trace not found")
    return jaeger_model.envelope([jaeger_model.ui_trace(trace)])


@router.get("/traces", summary="Jaeger: search traces (whole traces, newest first)")
async def jaeger_search(
    request: Request,
    principal: ReadPrincipal,
    services: ServicesDep,
    service: str | None = None,
    operation: str | None = None,
    tags: list[str] = Query([], description="JSON object of tags, or logfmt"),
    tag: list[str] = Query([], description="key:value"),
    min_duration: str | None = Query(None, alias="minDuration", description="e.g. 100ms"),
    max_duration: str | None = Query(None, alias="maxDuration", description="e.g. 1.2s"),
    start: str | None = Query(None, description="microseconds since the epoch"),
    end: str | None = Query(None, description="microseconds since the epoch"),
    limit: str | None = None,
    trace_ids: list[str] = Query([], alias="traceID"),
) -> dict[str, Any]:
    now = datetime.now(UTC)
    end_time = _micros_param(request, "end", now)
    start_time = _micros_param(request, "start", end_time - DEFAULT_SEARCH_LOOKBACK)
    if start_time > end_time:
        raise BadRequest("'start' must not be after 'end'")
    count = _parsed(lambda: parse_go_int("limit", limit)) if limit else DEFAULT_SEARCH_LIMIT
    if not 1 <= count <= MAX_SEARCH_LIMIT:
        raise BadRequest(f"unable to parse param 'limit': use 1 to {MAX_SEARCH_LIMIT}")
    low = _parsed(lambda: parse_duration_param("minDuration", min_duration))
    high = _parsed(lambda: parse_duration_param("maxDuration", max_duration))
    if low and high and high < low:
        raise BadRequest("'maxDuration' should be greater than 'minDuration'")
    found_tags = _parsed(lambda: parse_tags(tag, tags))
    if len(found_tags) > MAX_ATTRIBUTE_FILTERS:
        raise BadRequest(f"at most {MAX_ATTRIBUTE_FILTERS} tags, got {len(found_tags)}")
    engine, project_id = services.read_engine, principal.project_id
    if trace_ids:
        ids = [_parsed(lambda text=text: parse_trace_id(text)) for text in trace_ids]
        found = await jaeger_reads.traces_by_id(engine, project_id, ids)
        missing = [
            {"msg": "trace not found", "traceID": format_trace_id(trace_id)}
            for trace_id, trace in found
            if trace is None
        ]
        traces = [jaeger_model.ui_trace(trace) for _, trace in found if trace]
        return jaeger_model.envelope(traces, errors=missing or None)
    filters = _parsed(
        lambda: jaeger_reads.jaeger_span_filters(
            service=text_param(service),
            operation=text_param(operation),
            tags=found_tags,
            min_duration_ns=low or None,
            max_duration_ns=high or None,
        )
    )
    traces = await jaeger_reads.find_traces(
        engine, project_id, filters, start=start_time, end=end_time, limit=count
    )
    return jaeger_model.envelope([jaeger_model.ui_trace(trace) for trace in traces])


@router.get("/dependencies", summary="Jaeger: calls between services (parent → child)")
async def jaeger_dependencies(
    request: Request,
    principal: ReadPrincipal,
    services: ServicesDep,
    end_ts: str | None = Query(None, alias="endTs", description="milliseconds since the epoch"),
    lookback: str | None = Query(None, description="milliseconds"),
    service: str | None = None,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    end_time = now
    if end_ts:
        end_time = _parsed(lambda: from_micros("endTs", parse_go_int("endTs", end_ts) * 1000))
    lookback_ms = DEFAULT_DEPENDENCY_LOOKBACK_MS
    if lookback:
        lookback_ms = _parsed(lambda: parse_go_int("lookback", lookback))
    if lookback_ms < 0:
        raise BadRequest("unable to parse param 'lookback': must not be negative")
    # Nothing older than the traces' retention is held: a longer lookback reads no more.
    held_ms = services.settings.seconds("retention_traces") * 1000 + DEFAULT_DEPENDENCY_LOOKBACK_MS
    window = timedelta(milliseconds=min(lookback_ms, held_ms))
    links = await jaeger_reads.dependency_links(
        services.read_engine,
        principal.project_id,
        start=end_time - window,
        end=end_time,
        service=text_param(service),
    )
    return jaeger_model.envelope(jaeger_model.dependency_links(links))
