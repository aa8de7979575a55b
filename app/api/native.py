"""Native JSON ingest: POST /api/v1/ingest/spans|errors (logs and metrics alongside).

Answers `{"accepted": n, "rejected": [{"index": i, "reason": "..."}]}` for a well-formed
body, whatever the share of bad items; a body that is not the expected JSON is a 400.
Outages answer 503 and saturation 429 (decided before the body is read when it can be),
both with Retry-After; nothing is acknowledged before it is committed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from app.api.body import ClientGone, read_body, unless_disconnected
from app.api.deps import authorize, get_services
from app.api.docs import inline_definitions
from app.api.errors import BadRequest, PayloadTooLarge, ServiceUnavailable, TooManyRequests
from app.api.errors import UnsupportedMediaType as UnsupportedMediaTypeError
from app.api.otlp import decode_limits
from app.domain.metrics import MetricBatch
from app.ingest import payload
from app.ingest.admission import Overloaded, Ticket
from app.ingest.native import (
    NativeBatch,
    decode_native_errors_steps,
    decode_native_logs_steps,
    decode_native_metrics_steps,
    decode_native_spans_steps,
)
from app.ingest.native_items import NativeError, NativeLog, NativeMetric, NativeSpan
from app.ingest.offload import Steps
from app.ingest.otlp_common import MalformedPayload
from app.ingest.store import store_errors, store_spans
from app.ingest.store_logs import store_logs
from app.ingest.store_metrics import store_metric_points
from app.ingest.writer import DatabaseUnavailable, WriteRejected, WriterSaturated
from app.services import Services
from app.telemetry import INGEST_ITEMS, INGEST_REQUESTS

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


async def read_document(request: Request, services: Services, ticket: Ticket) -> bytes:
    """The JSON body's bytes (decompressed), reserved on `ticket`; parsed off the loop later."""
    try:
        payload.media_type(request.headers.get("content-type"), accepted=(payload.JSON,))
        return await read_body(request, services.settings, ticket, services.offload)
    except payload.UnsupportedMediaType as error:
        raise UnsupportedMediaTypeError(str(error)) from None
    except payload.PayloadTooLarge as error:
        raise PayloadTooLarge(str(error)) from None
    except MalformedPayload as error:
        raise BadRequest(str(error)) from None


async def ingest(
    request: Request,
    signal: str,
    decode: Callable[[Any, Services], Steps[NativeBatch]],
    store: Callable[[Services, int, list[Any]], Awaitable[dict[int, str] | None]],
) -> tuple[NativeBatch, dict[str, Any]]:
    """Decode, store, answer. `store` may refuse items (position in `items` → reason)."""
    services = get_services(request)
    principal = await authorize(request, "ingest")
    try:
        with services.admission.ticket() as ticket:
            body = await read_document(request, services, ticket)
            work = _decode_and_store(services, principal.project_id, signal, body, decode, store)
            batch, refused = await unless_disconnected(request, work)
    except Overloaded as error:
        INGEST_REQUESTS.labels(signal, "native", "unavailable").inc()
        raise TooManyRequests(
            f"collector is saturated: {error}", headers=_retry(services)
        ) from None
    except (ClientDisconnect, ClientGone):
        INGEST_REQUESTS.labels(signal, "native", "disconnected").inc()
        raise ClientGone() from None
    batch.refuse(refused or {})
    INGEST_REQUESTS.labels(signal, "native", "ok").inc()
    INGEST_ITEMS.labels(signal, "accepted").inc(len(batch.items))
    INGEST_ITEMS.labels(signal, "rejected").inc(batch.rejected)
    return batch, {"accepted": len(batch.items), "rejected": batch.reasons}


async def _decode_and_store(
    services: Services,
    project_id: int,
    signal: str,
    body: bytes,
    decode: Callable[[Any, Services], Steps[NativeBatch]],
    store: Callable[[Services, int, list[Any]], Awaitable[dict[int, str] | None]],
) -> tuple[NativeBatch, dict[int, str] | None]:
    try:
        steps = payload.parsed_json_steps(body, lambda document: decode(document, services))
        batch = await services.offload.sliced(steps)
    except MalformedPayload as error:
        INGEST_REQUESTS.labels(signal, "native", "rejected").inc()
        raise BadRequest(str(error)) from None
    try:
        return batch, await store(services, project_id, batch.items)
    except WriterSaturated as error:
        INGEST_REQUESTS.labels(signal, "native", "unavailable").inc()
        raise TooManyRequests(
            f"collector is saturated: {error}", headers=_retry(services)
        ) from None
    except DatabaseUnavailable:
        INGEST_REQUESTS.labels(signal, "native", "unavailable").inc()
        raise ServiceUnavailable(
            "the database is unavailable; retry later", headers=_retry(services)
        ) from None
    except WriteRejected as error:
        INGEST_REQUESTS.labels(signal, "native", "rejected").inc()
        raise BadRequest(str(error)) from None


def _retry(services: Services) -> dict[str, str]:
    return {"Retry-After": str(services.settings.retry_after_s)}


_SPANS_EXAMPLE = {
    "spans": [
        {
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "name": "chat gpt-4o",
            "service": "assistant",
            "kind": "client",
            "start_time": "2026-11-23T10:00:00Z",
            "duration_ms": 812.5,
            "status": "ok",
            "attributes": {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200},
        }
    ]
}
_LOGS_EXAMPLE = {
    "logs": [
        {
            "timestamp": "2026-11-23T10:00:01Z",
            "level": "error",
            "message": "tool run_tests failed",
            "service": "assistant",
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "attributes": {"tool": "run_tests"},
            "error": {"type": "TimeoutError", "message": "timed out after 30s"},
        }
    ]
}
_METRICS_EXAMPLE = {
    "metrics": [
        {
            "name": "assistant.tool.runs",
            "type": "counter",
            "value": 1,
            "service": "assistant",
            "attributes": {"tool": "run_tests", "outcome": "ok"},
        },
        {
            "name": "assistant.context.tokens",
            "type": "histogram",
            "value": 18250,
            "unit": "{token}",
        },
    ]
}
_ERRORS_EXAMPLE = {
    "errors": [
        {
            "type": "TimeoutError",
            "message": "tool run_tests timed out after 30s",
            "service": "assistant",
            "stack": 'Traceback (most recent call last):\n  File "/app/tools.py", line 9, in run\n'
            "TimeoutError: timed out",
        }
    ]
}


def request_body(model: type[BaseModel], key: str, example: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI for a body the endpoint reads itself (to apply size limits while reading)."""
    item = inline_definitions(model.model_json_schema())
    schema = {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": item}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


@router.post(
    "/spans",
    summary="Ingest spans (native JSON)",
    openapi_extra=request_body(NativeSpan, "spans", _SPANS_EXAMPLE),
)
async def ingest_spans(request: Request) -> dict[str, Any]:
    def decode(document: Any, services: Services) -> Steps[NativeBatch]:
        return decode_native_spans_steps(document, decode_limits(services, "retention_traces"))

    async def store(services: Services, project_id: int, items: list[Any]) -> None:
        await store_spans(services.writer, services.enricher, project_id, items, services.offload)

    _, answer = await ingest(request, "spans", decode, store)
    return answer


@router.post(
    "/logs",
    summary="Ingest logs (native JSON)",
    openapi_extra=request_body(NativeLog, "logs", _LOGS_EXAMPLE),
)
async def ingest_logs(request: Request) -> dict[str, Any]:
    def decode(document: Any, services: Services) -> Steps[NativeBatch]:
        return decode_native_logs_steps(document, decode_limits(services, "retention_logs"))

    async def store(services: Services, project_id: int, items: list[Any]) -> None:
        await store_logs(services.writer, services.enricher, project_id, items, services.offload)

    _, answer = await ingest(request, "logs", decode, store)
    return answer


@router.post(
    "/metrics",
    summary="Ingest metric values (native JSON)",
    openapi_extra=request_body(NativeMetric, "metrics", _METRICS_EXAMPLE),
)
async def ingest_metrics(request: Request) -> dict[str, Any]:
    def decode(document: Any, services: Services) -> Steps[NativeBatch]:
        limits = decode_limits(services, "retention_metrics")
        return decode_native_metrics_steps(document, limits, time.time_ns())

    async def store(services: Services, project_id: int, items: list[Any]) -> dict[int, str]:
        refused = await store_metric_points(
            services.writer,
            services.enricher,
            services.series,
            project_id,
            MetricBatch(items),
            services.offload,
        )
        limit = services.settings.max_series_per_metric
        return {
            position: f"metric {point.stream.name!r} has reached the {limit}-series limit"
            for position, point in enumerate(items)
            if point.series_id in refused
        }

    _, answer = await ingest(request, "metrics", decode, store)
    return answer


@router.post(
    "/errors",
    summary="Ingest errors (native JSON)",
    openapi_extra=request_body(NativeError, "errors", _ERRORS_EXAMPLE),
)
async def ingest_errors(request: Request) -> dict[str, Any]:
    def decode(document: Any, services: Services) -> Steps[NativeBatch]:
        limits = decode_limits(services, "retention_errors")
        return decode_native_errors_steps(document, limits, time.time_ns())

    async def store(services: Services, project_id: int, items: list[Any]) -> None:
        await store_errors(services.writer, services.enricher, project_id, items, services.offload)

    batch, answer = await ingest(request, "errors", decode, store)
    answer["fingerprints"] = [
        {"index": index, "fingerprint": error.fingerprint}
        for index, error in zip(batch.indexes, batch.items, strict=True)
    ]
    return answer
