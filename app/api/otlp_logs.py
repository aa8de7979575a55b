"""POST /v1/logs."""

from __future__ import annotations

from fastapi import APIRouter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from app.api.otlp import OtlpSignal, otlp_route
from app.auth import Principal
from app.domain.records import DecodedBatch
from app.ingest.otlp_logs import decode_logs_json_steps, decode_logs_protobuf_steps
from app.ingest.store_logs import store_logs
from app.services import Services

router = APIRouter()


async def _store(services: Services, principal: Principal, batch: DecodedBatch) -> None:
    await store_logs(
        services.writer, services.enricher, principal.project_id, batch.take(), services.offload
    )


def _response(rejected: int, message: str) -> logs_service_pb2.ExportLogsServiceResponse:
    response = logs_service_pb2.ExportLogsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    return response


LOGS = OtlpSignal(
    name="logs",
    retention_setting="retention_logs",
    decode_protobuf=decode_logs_protobuf_steps,
    decode_json=decode_logs_json_steps,
    store=_store,
    response=_response,
)

otlp_route(router, "/v1/logs", LOGS, "Receive OTLP logs (protobuf or JSON)")
