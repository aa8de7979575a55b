"""OTLP/HTTP receivers: content negotiation, limits, auth and answers exactly as the spec says.

Answers (OTLP/HTTP spec): 200 with an Export*ServiceResponse in the request's content
type, carrying partial success when some items were rejected; 400 with a google.rpc.Status
for undecodable data; 413 over a size limit; 415 for other content types; 503 with
Retry-After while the database is unreachable or the collector is saturated (older SDKs
retry 503 but not 429), decided before the body is read when it can be. Nothing is
answered 200 before it is committed, and nothing is answered to a client that left.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import status_pb2
from starlette.requests import ClientDisconnect

from app.api.body import ClientGone, read_body, unless_disconnected
from app.api.deps import authorize, get_services
from app.api.errors import ApiError
from app.auth import Principal
from app.domain.records import DecodedBatch
from app.ingest import payload
from app.ingest.admission import Overloaded
from app.ingest.offload import Steps
from app.ingest.otlp_common import NANOS_PER_SECOND, DecodeLimits, MalformedPayload
from app.ingest.writer import DatabaseUnavailable, WriteRejected, WriterSaturated
from app.services import Services
from app.telemetry import INGEST_ITEMS, INGEST_REQUESTS

# google.rpc.Code values used in Status bodies.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}


@dataclass(frozen=True, slots=True)
class OtlpSignal:
    """What differs between /v1/traces, /v1/logs and /v1/metrics."""

    name: str
    retention_setting: str
    # The decoders, as sliced steps run on the event loop (see app/ingest/offload.py); the
    # JSON one takes the body already parsed.
    decode_protobuf: Callable[[bytes, DecodeLimits], Steps[DecodedBatch]]
    decode_json: Callable[[Any, DecodeLimits], Steps[DecodedBatch]]
    store: Callable[[Services, Principal, DecodedBatch], Awaitable[None]]
    response: Callable[[int, str], Message]


class OtlpFailure(Exception):
    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


async def receive(request: Request, signal: OtlpSignal) -> Response:
    services = get_services(request)
    settings = services.settings
    media = payload.JSON
    try:
        media = payload.media_type(request.headers.get("content-type"))
        principal = await authorize(request, "ingest")
        with services.admission.ticket() as ticket:
            body = await read_body(request, settings, ticket, services.offload)
            batch = await unless_disconnected(
                request, _decode_and_store(services, principal, signal, media, body)
            )
    except OtlpFailure as failure:
        return _failure(signal, media, failure)
    except ApiError as error:
        retry_after = error.headers.get("Retry-After")
        failure = OtlpFailure(
            error.status, error.message, int(retry_after) if retry_after else None
        )
        return _failure(signal, media, failure)
    except Overloaded as error:
        failure = OtlpFailure(503, f"collector is saturated: {error}", settings.retry_after_s)
        return _failure(signal, media, failure)
    except payload.UnsupportedMediaType as error:
        return _failure(signal, media, OtlpFailure(415, str(error)))
    except payload.PayloadTooLarge as error:
        return _failure(signal, media, OtlpFailure(413, str(error)))
    except MalformedPayload as error:
        return _failure(signal, media, OtlpFailure(400, str(error)))
    except (ClientDisconnect, ClientGone):
        INGEST_REQUESTS.labels(signal.name, _protocol(media), "disconnected").inc()
        raise ClientGone() from None
    INGEST_REQUESTS.labels(signal.name, _protocol(media), "ok").inc()
    INGEST_ITEMS.labels(signal.name, "accepted").inc(batch.accepted)
    if batch.rejected:
        INGEST_ITEMS.labels(signal.name, "rejected").inc(batch.rejected)
    message = signal.response(batch.rejected, batch.error_message())
    return _encode(message, media, 200)


async def _decode_and_store(
    services: Services, principal: Principal, signal: OtlpSignal, media: str, body: bytes
) -> DecodedBatch:
    limits = decode_limits(services, signal.retention_setting)
    if media == payload.PROTOBUF:
        batch = await decode_protobuf(services, signal, body, limits)
    else:
        steps = payload.parsed_json_steps(
            body, lambda document: signal.decode_json(document, limits)
        )
        batch = await services.offload.sliced(steps)
    await store_batch(services, principal, batch, signal)
    return batch


async def decode_protobuf(
    services: Services, signal: OtlpSignal, body: bytes, limits: DecodeLimits
) -> DecodedBatch:
    """A protobuf body decoded in slices on the event loop."""
    return await services.offload.sliced(signal.decode_protobuf(body, limits))


async def store_batch(
    services: Services, principal: Principal, batch: DecodedBatch, signal: OtlpSignal
) -> None:
    retry_after = services.settings.retry_after_s
    try:
        await signal.store(services, principal, batch)
    except WriterSaturated as error:
        INGEST_ITEMS.labels(signal.name, "failed").inc(batch.accepted)
        raise OtlpFailure(503, f"collector is saturated: {error}", retry_after) from None
    except DatabaseUnavailable:
        INGEST_ITEMS.labels(signal.name, "failed").inc(batch.accepted)
        raise OtlpFailure(503, "the database is unavailable; retry later", retry_after) from None
    except WriteRejected as error:
        INGEST_ITEMS.labels(signal.name, "failed").inc(batch.accepted)
        raise OtlpFailure(400, str(error)) from None


def decode_limits(services: Services, retention_setting: str) -> DecodeLimits:
    settings = services.settings
    now = time.time_ns()
    retention = settings.seconds(retention_setting)
    return DecodeLimits(
        oldest_unix_nano=now - int(retention * NANOS_PER_SECOND),
        newest_unix_nano=now + int(settings.seconds("max_future_skew") * NANOS_PER_SECOND),
        max_attributes=settings.max_attributes,
        max_value_chars=settings.max_attribute_value_chars,
        retention_label=f"{getattr(settings, retention_setting)} retention",
    )


def _failure(signal: OtlpSignal, media: str, failure: OtlpFailure) -> Response:
    outcome = "unavailable" if failure.status >= 500 else "rejected"
    INGEST_REQUESTS.labels(signal.name, _protocol(media), outcome).inc()
    status = status_pb2.Status(code=_RPC_CODES.get(failure.status, 2), message=failure.message)
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
    if failure.status in (401,):
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return _encode(status, media, failure.status, headers)


def _encode(
    message: Message, media: str, status: int, headers: dict[str, str] | None = None
) -> Response:
    if media == payload.PROTOBUF:
        return Response(
            message.SerializeToString(), status, headers=headers, media_type=payload.PROTOBUF
        )
    body = json_format.MessageToJson(message, indent=None, preserving_proto_field_name=False)
    return Response(body, status, headers=headers, media_type=payload.JSON)


def _protocol(media: str) -> str:
    return "protobuf" if media == payload.PROTOBUF else "json"


def otlp_route(router: APIRouter, path: str, signal: OtlpSignal, summary: str) -> None:
    async def endpoint(request: Request) -> Response:
        return await receive(request, signal)

    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        summary=summary,
        response_class=Response,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    payload.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                    payload.JSON: {"schema": {"type": "object"}},
                },
            }
        },
        tags=["otlp"],
    )
