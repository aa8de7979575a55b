"""The OTLP Export services over gRPC: the HTTP receivers' pipeline, answered in gRPC codes.

Each Export call takes the same steps as POST /v1/{traces,logs,metrics} with protobuf:
the key from the `authorization` (Bearer) or `x-api-key` metadata, a reservation on the
in-flight byte budget, decoding on the ingest threads with the same attribute caps, and the
group-commit writer; OK is answered only once the rows are committed in PostgreSQL.

Requests are taken as bytes (no deserializer is registered), so the decoders that read
HTTP bodies read them too, off the event loop. gRPC itself undoes gzip and refuses a
message larger than TELEMETRY_MAX_DECOMPRESSED_BYTES (RESOURCE_EXHAUSTED without
RetryInfo: the spec's non-retryable reading, as retrying cannot make it fit).

Answers (OTLP spec, OTLP/gRPC): OK with an Export*ServiceResponse, carrying partial success
when items were rejected; INVALID_ARGUMENT for data that cannot be decoded or stored;
UNAUTHENTICATED for a missing, malformed or unknown key; PERMISSION_DENIED for a key
without the ingest scope; UNAVAILABLE with RetryInfo while the database is unreachable or
the collector is saturated (the exporters retry it after the delay). A client that cancels
is not answered, and its rows not yet taken by the writer are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from app.api.deps import authorize_headers
from app.api.errors import ApiError
from app.api.otlp import OtlpFailure, OtlpSignal, decode_limits, decode_protobuf, store_batch
from app.api.otlp_logs import LOGS
from app.api.otlp_metrics import METRICS
from app.api.otlp_traces import TRACES
from app.domain.records import DecodedBatch
from app.grpc.status import GrpcFailure
from app.ingest.admission import DECODED_BYTES_PER_BYTE, Overloaded
from app.ingest.otlp_common import MalformedPayload
from app.services import Services
from app.telemetry import GRPC_REQUEST_DURATION, INGEST_ITEMS, INGEST_REQUESTS, request_id_var

log = logging.getLogger("app.grpc")
PROTOCOL = "grpc"
METHOD = "Export"
# The services as the .proto files name them, with the signal each one carries.
SERVICES: tuple[tuple[str, OtlpSignal], ...] = (
    (trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name, TRACES),
    (logs_service_pb2.DESCRIPTOR.services_by_name["LogsService"].full_name, LOGS),
    (metrics_service_pb2.DESCRIPTOR.services_by_name["MetricsService"].full_name, METRICS),
)
_CODE_OF_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    503: grpc.StatusCode.UNAVAILABLE,
}

Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[Message]]


def handlers(services: Services) -> list[grpc.GenericRpcHandler]:
    """One generic handler per OTLP service, its Export method bound to `services`."""
    found = []
    for service, signal in SERVICES:
        method = grpc.unary_unary_rpc_method_handler(
            _bind(services, signal, f"/{service}/{METHOD}"),
            request_deserializer=None,
            response_serializer=_serialize,
        )
        found.append(grpc.method_handlers_generic_handler(service, {METHOD: method}))
    return found


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _bind(services: Services, signal: OtlpSignal, method: str) -> Handler:
    async def export(body: bytes, context: grpc.aio.ServicerContext) -> Message:
        return await _export(services, signal, method, body, context)

    return export


async def _export(
    services: Services,
    signal: OtlpSignal,
    method: str,
    body: bytes,
    context: grpc.aio.ServicerContext,
) -> Message:
    token = request_id_var.set(uuid.uuid4().hex)
    started = time.perf_counter()
    try:
        try:
            batch = await _receive(services, signal, body, context.invocation_metadata())
        except asyncio.CancelledError:
            INGEST_REQUESTS.labels(signal.name, PROTOCOL, "disconnected").inc()
            _answered(method, grpc.StatusCode.CANCELLED, started)
            raise
        # Counted before answering: a client that reads /metrics next sees its call.
        if isinstance(batch, GrpcFailure):
            outcome = "unavailable" if batch.code == grpc.StatusCode.UNAVAILABLE else "rejected"
            INGEST_REQUESTS.labels(signal.name, PROTOCOL, outcome).inc()
            _answered(method, batch.code, started)
            await context.abort(batch.code, batch.details(), batch.trailing_metadata())
        INGEST_REQUESTS.labels(signal.name, PROTOCOL, "ok").inc()
        INGEST_ITEMS.labels(signal.name, "accepted").inc(batch.accepted)
        if batch.rejected:
            INGEST_ITEMS.labels(signal.name, "rejected").inc(batch.rejected)
        _answered(method, grpc.StatusCode.OK, started)
        return signal.response(batch.rejected, batch.error_message())
    finally:
        request_id_var.reset(token)


def _answered(method: str, code: grpc.StatusCode, started: float) -> None:
    """The call's duration in the histogram, and its one log line."""
    elapsed = time.perf_counter() - started
    GRPC_REQUEST_DURATION.labels(method, code.name).observe(elapsed)
    log.info(
        "grpc request",
        extra={"method": method, "code": code.name, "duration_ms": round(elapsed * 1000, 2)},
    )


async def _receive(
    services: Services,
    signal: OtlpSignal,
    body: bytes,
    metadata: Sequence[tuple[str, Any]] | None,
) -> DecodedBatch | GrpcFailure:
    """The committed batch, or the failure to answer."""
    settings = services.settings
    retry_after = settings.retry_after_s
    try:
        authorization, api_key = _credentials(metadata or ())
        principal = await authorize_headers(services, authorization, api_key, "ingest")
        with services.admission.ticket() as ticket:
            # gRPC has read and inflated the message already: it is its own payload.
            ticket.reserve(len(body) * (1 + DECODED_BYTES_PER_BYTE))
            limits = decode_limits(services, signal.retention_setting)
            batch = await decode_protobuf(services, signal, body, limits)
            await store_batch(services, principal, batch, signal)
        return batch
    except ApiError as error:
        code = _CODE_OF_STATUS.get(error.status, grpc.StatusCode.INTERNAL)
        retry = retry_after if code == grpc.StatusCode.UNAVAILABLE else None
        return GrpcFailure(code, error.message, retry)
    except OtlpFailure as failure:
        code = _CODE_OF_STATUS.get(failure.status, grpc.StatusCode.INTERNAL)
        retry = retry_after if code == grpc.StatusCode.UNAVAILABLE else None
        return GrpcFailure(code, failure.message, retry)
    except Overloaded as error:
        return GrpcFailure(
            grpc.StatusCode.UNAVAILABLE, f"collector is saturated: {error}", retry_after
        )
    except MalformedPayload as error:
        return GrpcFailure(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    except Exception:
        log.exception("grpc export failed", extra={"signal": signal.name})
        return GrpcFailure(grpc.StatusCode.INTERNAL, "internal error; see the collector's log")


def _credentials(metadata: Iterable[tuple[str, Any]]) -> tuple[str | None, str | None]:
    """The `authorization` and `x-api-key` metadata values (keys arrive lowercased)."""
    authorization = api_key = None
    for key, value in metadata:
        if not isinstance(value, str):
            continue
        if key == "authorization":
            authorization = value
        elif key == "x-api-key":
            api_key = value
    return authorization, api_key
