"""OTLP metrics: an `ExportMetricsServiceRequest` (protobuf bytes or parsed JSON) → metric points.

All five kinds (gauge, sum, histogram, exponential histogram, summary) become `MetricPoint`
records that carry their series identity (the shared `MetricStream` plus point attributes);
the series id itself is computed at store time, after redaction. Each point is checked on
its own (app/ingest/metric_checks.py): a bad one is rejected through partial success with a
reason, the rest are kept. The JSON walk lives in otlp_metrics_json.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from app.domain.metrics import (
    EXPONENTIAL_HISTOGRAM,
    GAUGE,
    HISTOGRAM,
    SUM,
    SUMMARY,
    MetricBatch,
    MetricPoint,
    MetricStream,
)
from app.domain.records import Resource, Scope
from app.ingest.metric_checks import (
    NAME_LIMIT,
    check_count,
    check_exponential,
    check_histogram,
    check_times,
    describe,
    exemplar_record,
    make_stream,
    quantile_records,
    require_no_recorded_value,
)
from app.ingest.offload import Steps, drive
from app.ingest.otlp_common import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    DecodeLimits,
    InvalidItem,
    MalformedPayload,
    attributes_pb,
    clean_text,
    id_pb,
    resource_pb,
    scope_pb,
)
from app.ingest.otlp_metrics_json import (
    POINTS_PER_STEP,
    decode_metrics_json,
    decode_metrics_json_steps,
)

__all__ = [
    "decode_metrics_json",
    "decode_metrics_json_steps",
    "decode_metrics_protobuf",
    "decode_metrics_protobuf_steps",
]

# Protobuf oneof field name → metric type.
_PB_KINDS = {
    "gauge": GAUGE,
    "sum": SUM,
    "histogram": HISTOGRAM,
    "exponential_histogram": EXPONENTIAL_HISTOGRAM,
    "summary": SUMMARY,
}


def decode_metrics_protobuf(body: bytes, limits: DecodeLimits) -> MetricBatch:
    return drive(decode_metrics_protobuf_steps(body, limits))


def decode_metrics_protobuf_steps(body: bytes, limits: DecodeLimits) -> Steps[MetricBatch]:
    """`decode_metrics_protobuf` as sliced steps: it yields after each metric and every
    `POINTS_PER_STEP` points of one. Parsing the message is one step."""
    try:
        request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
    except DecodeError as error:
        raise MalformedPayload(
            f"body is not a valid ExportMetricsServiceRequest: {error}"
        ) from None
    yield
    batch = MetricBatch(items=[])
    for resource_metrics in request.resource_metrics:
        try:
            resource = resource_pb(resource_metrics.resource, resource_metrics.schema_url, limits)
        except InvalidItem as problem:
            for scope_metrics in resource_metrics.scope_metrics:
                batch.reject_many(_point_count(scope_metrics.metrics), f"resource: {problem}")
            continue
        for scope_metrics in resource_metrics.scope_metrics:
            try:
                scope = scope_pb(scope_metrics.scope, scope_metrics.schema_url, limits)
            except InvalidItem as problem:
                batch.reject_many(_point_count(scope_metrics.metrics), f"scope: {problem}")
                continue
            for metric in scope_metrics.metrics:
                yield from _metric_pb(metric, resource, scope, limits, batch)
                yield
    return batch


def _point_count(metrics: Any) -> int:
    count = 0
    for metric in metrics:
        field = metric.WhichOneof("data")
        if field is not None:
            count += len(getattr(metric, field).data_points)
    return count


def _metric_pb(
    metric: Any, resource: Resource, scope: Scope, limits: DecodeLimits, batch: MetricBatch
) -> Steps[None]:
    field = metric.WhichOneof("data")
    if field is None:
        return  # a metric without data carries no points: nothing to store or reject
    data = getattr(metric, field)
    kind = _PB_KINDS[field]
    name = clean_text(metric.name, NAME_LIMIT)
    try:
        stream = make_stream(
            name,
            kind,
            metric.unit,
            metric.description,
            # Gauges and summaries have neither field; they stay unspecified and non-monotonic.
            getattr(data, "aggregation_temporality", 0),
            getattr(data, "is_monotonic", False),
            resource,
            scope,
            limits,
        )
    except InvalidItem as problem:
        for _ in data.data_points:
            batch.reject(describe(name, problem))
        return
    convert = _PB_POINTS[kind]
    for number, point in enumerate(data.data_points, 1):
        try:
            batch.items.append(convert(point, stream, limits))
        except InvalidItem as problem:
            batch.reject(describe(name, problem))
        if not number % POINTS_PER_STEP:
            yield


def _point_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    time, start = point.time_unix_nano, point.start_time_unix_nano
    check_times(time, start, limits)
    attributes, _ = attributes_pb(point.attributes, limits)
    return MetricPoint(stream, attributes, time, start, point.flags)


def _number_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    which = point.WhichOneof("value")
    if which == "as_double":
        record.value = point.as_double
    elif which == "as_int":
        record.value = float(point.as_int)
    else:
        require_no_recorded_value(record)
    record.exemplars = _exemplars_pb(point.exemplars, limits)
    return record


def _histogram_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    record.count = check_count(point.count, "count")
    record.sum = point.sum if point.HasField("sum") else None
    record.min = point.min if point.HasField("min") else None
    record.max = point.max if point.HasField("max") else None
    record.explicit_bounds = list(point.explicit_bounds)
    record.bucket_counts = list(point.bucket_counts)
    check_histogram(record)
    record.exemplars = _exemplars_pb(point.exemplars, limits)
    return record


def _exponential_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    record.count = check_count(point.count, "count")
    record.sum = point.sum if point.HasField("sum") else None
    record.min = point.min if point.HasField("min") else None
    record.max = point.max if point.HasField("max") else None
    record.scale = point.scale
    record.zero_count = check_count(point.zero_count, "zeroCount")
    record.zero_threshold = point.zero_threshold
    record.positive_offset = point.positive.offset
    record.positive_bucket_counts = list(point.positive.bucket_counts)
    record.negative_offset = point.negative.offset
    record.negative_bucket_counts = list(point.negative.bucket_counts)
    check_exponential(record)
    record.exemplars = _exemplars_pb(point.exemplars, limits)
    return record


def _summary_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    record.count = check_count(point.count, "count")
    record.sum = point.sum
    pairs = [(item.quantile, item.value) for item in point.quantile_values]
    record.quantiles = quantile_records(pairs)
    return record


def _exemplars_pb(exemplars: Any, limits: DecodeLimits) -> list[dict[str, Any]]:
    result = []
    for exemplar in exemplars:
        which = exemplar.WhichOneof("value")
        value = getattr(exemplar, which) if which else None
        attributes, _ = attributes_pb(exemplar.filtered_attributes, limits)
        result.append(
            exemplar_record(
                exemplar.time_unix_nano,
                value,
                id_pb(exemplar.trace_id, "exemplar traceId", TRACE_ID_BYTES, required=False),
                id_pb(exemplar.span_id, "exemplar spanId", SPAN_ID_BYTES, required=False),
                attributes,
            )
        )
    return result


_PB_POINTS: dict[str, Callable[[Any, MetricStream, DecodeLimits], MetricPoint]] = {
    GAUGE: _number_pb,
    SUM: _number_pb,
    HISTOGRAM: _histogram_pb,
    EXPONENTIAL_HISTOGRAM: _exponential_pb,
    SUMMARY: _summary_pb,
}
