"""POST /v1/traces."""

from __future__ import annotations

from fastapi import APIRouter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from app.api.otlp import OtlpSignal, otlp_route
from app.auth import Principal
from app.domain.records import DecodedBatch
from app.ingest.otlp_traces import decode_traces_json_steps, decode_traces_protobuf_steps
from app.ingest.store import store_spans
from app.services import Services

router = APIRouter()


async def _store(services: Services, principal: Principal, batch: DecodedBatch) -> None:
    await store_spans(
        services.writer, services.enricher, principal.project_id, batch.take(), services.offload
    )


def _response(rejected: int, message: str) -> trace_service_pb2.ExportTraceServiceResponse:
    response = trace_service_pb2.ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    return response


TRACES = OtlpSignal(
    name="traces",
    retention_setting="retention_traces",
    decode_protobuf=decode_traces_protobuf_steps,
    decode_json=decode_traces_json_steps,
    store=_store,
    response=_response,
)

otlp_route(router, "/v1/traces", TRACES, "Receive OTLP traces (protobuf or JSON)")
