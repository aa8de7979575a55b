"""POST /v1/metrics."""

from __future__ import annotations

from fastapi import APIRouter
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from app.api.otlp import OtlpSignal, otlp_route
from app.auth import Principal
from app.domain.metrics import MetricBatch
from app.domain.records import DecodedBatch
from app.ingest.otlp_metrics import decode_metrics_json_steps, decode_metrics_protobuf_steps
from app.ingest.store_metrics import store_metric_points
from app.services import Services

router = APIRouter()


async def _store(services: Services, principal: Principal, batch: DecodedBatch) -> None:
    # Points of series over the per-metric limit leave batch.items for batch.rejected here,
    # before the receiver counts and answers.
    assert isinstance(batch, MetricBatch)  # what both metric decoders return
    await store_metric_points(
        services.writer,
        services.enricher,
        services.series,
        principal.project_id,
        batch,
        services.offload,
    )


def _response(rejected: int, message: str) -> metrics_service_pb2.ExportMetricsServiceResponse:
    response = metrics_service_pb2.ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    return response


METRICS = OtlpSignal(
    name="metrics",
    retention_setting="retention_metrics",
    decode_protobuf=decode_metrics_protobuf_steps,
    decode_json=decode_metrics_json_steps,
    store=_store,
    response=_response,
)

otlp_route(router, "/v1/metrics", METRICS, "Receive OTLP metrics (protobuf or JSON)")
