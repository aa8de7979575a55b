"""OTLP metrics: an `ExportMetricsServiceRequest` (protobuf bytes or parsed JSON) → metric points.

All five kinds (gauge, sum, histogram, exponential histogram, summary) become `MetricPoint`
records that carry their series identity (the shared `MetricStream` plus point attributes);
the series id itself is computed at store time, after redaction. Each point is checked on
its own: a bad one is rejected through partial success with a reason, the rest are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from app.domain.metrics import (
    EXPONENTIAL_HISTOGRAM,
    FLAG_NO_RECORDED_VALUE,
    GAUGE,
    HISTOGRAM,
    SUM,
    SUMMARY,
    MetricPoint,
    MetricStream,
)
from app.domain.records import DecodedBatch, Resource, Scope
from app.ingest.otlp_common import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    DecodeLimits,
    InvalidItem,
    MalformedPayload,
    as_dict,
    as_list,
    attributes_json,
    attributes_pb,
    clean_text,
    enum_json,
    field_json,
    float_json,
    id_json,
    id_pb,
    int_json,
    resource_json,
    resource_pb,
    scope_json,
    scope_pb,
)

TEMPORALITIES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
NAME_LIMIT = 1024
# Counts are uint64 on the wire but bigint in PostgreSQL; one larger value would fail the
# whole COPY, so it is refused here, point by point.
INT64_MAX = 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# The exponential histogram scales the OTLP data model defines.
MIN_SCALE, MAX_SCALE = -10, 20

# Protobuf oneof field name and JSON keys → metric type.
_PB_KINDS = {
    "gauge": GAUGE,
    "sum": SUM,
    "histogram": HISTOGRAM,
    "exponential_histogram": EXPONENTIAL_HISTOGRAM,
    "summary": SUMMARY,
}
_JSON_KINDS = (
    ("gauge", GAUGE),
    ("sum", SUM),
    ("histogram", HISTOGRAM),
    ("exponentialHistogram", EXPONENTIAL_HISTOGRAM),
    ("exponential_histogram", EXPONENTIAL_HISTOGRAM),
    ("summary", SUMMARY),
)


# ---------------------------------------------------------------- protobuf


def decode_metrics_protobuf(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    try:
        request = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
    except DecodeError as error:
        raise MalformedPayload(
            f"body is not a valid ExportMetricsServiceRequest: {error}"
        ) from None
    batch = DecodedBatch(items=[])
    for resource_metrics in request.resource_metrics:
        resource = resource_pb(resource_metrics.resource, resource_metrics.schema_url, limits)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_pb(scope_metrics.scope, scope_metrics.schema_url, limits)
            for metric in scope_metrics.metrics:
                _metric_pb(metric, resource, scope, limits, batch)
    return batch


def _metric_pb(
    metric: Any, resource: Resource, scope: Scope, limits: DecodeLimits, batch: DecodedBatch
) -> None:
    field = metric.WhichOneof("data")
    if field is None:
        return  # a metric without data carries no points: nothing to store or reject
    data = getattr(metric, field)
    kind = _PB_KINDS[field]
    name = clean_text(metric.name, NAME_LIMIT)
    try:
        stream = _stream(
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
            batch.reject(_describe(name, problem))
        return
    convert = _PB_POINTS[kind]
    for point in data.data_points:
        try:
            batch.items.append(convert(point, stream, limits))
        except InvalidItem as problem:
            batch.reject(_describe(name, problem))


def _point_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    time, start = point.time_unix_nano, point.start_time_unix_nano
    _check_times(time, start, limits)
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
        _require_no_recorded_value(record)
    record.exemplars = _exemplars_pb(point.exemplars, limits)
    return record


def _histogram_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    record.count = _count(point.count, "count")
    record.sum = point.sum if point.HasField("sum") else None
    record.min = point.min if point.HasField("min") else None
    record.max = point.max if point.HasField("max") else None
    record.explicit_bounds = list(point.explicit_bounds)
    record.bucket_counts = list(point.bucket_counts)
    _check_histogram(record)
    record.exemplars = _exemplars_pb(point.exemplars, limits)
    return record


def _exponential_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    record.count = _count(point.count, "count")
    record.sum = point.sum if point.HasField("sum") else None
    record.min = point.min if point.HasField("min") else None
    record.max = point.max if point.HasField("max") else None
    record.scale = point.scale
    record.zero_count = _count(point.zero_count, "zeroCount")
    record.zero_threshold = point.zero_threshold
    record.positive_offset = point.positive.offset
    record.positive_bucket_counts = list(point.positive.bucket_counts)
    record.negative_offset = point.negative.offset
    record.negative_bucket_counts = list(point.negative.bucket_counts)
    _check_exponential(record)
    record.exemplars = _exemplars_pb(point.exemplars, limits)
    return record


def _summary_pb(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_pb(point, stream, limits)
    record.count = _count(point.count, "count")
    record.sum = point.sum
    record.quantiles = _quantiles([(item.quantile, item.value) for item in point.quantile_values])
    return record


def _exemplars_pb(exemplars: Any, limits: DecodeLimits) -> list[dict[str, Any]]:
    result = []
    for exemplar in exemplars:
        which = exemplar.WhichOneof("value")
        value = getattr(exemplar, which) if which else None
        attributes, _ = attributes_pb(exemplar.filtered_attributes, limits)
        result.append(
            _exemplar(
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


# ---------------------------------------------------------------- JSON


def decode_metrics_json(document: Any, limits: DecodeLimits) -> DecodedBatch:
    """`document` is the request body already parsed from JSON."""
    root = as_dict(document, "request body")
    batch = DecodedBatch(items=[])
    for resource_metrics in as_list(
        field_json(root, "resourceMetrics", "resource_metrics"), "resourceMetrics"
    ):
        resource_metrics = as_dict(resource_metrics, "resourceMetrics[]")
        scopes = [
            as_dict(scope_metrics, "scopeMetrics[]")
            for scope_metrics in as_list(
                field_json(resource_metrics, "scopeMetrics", "scope_metrics"), "scopeMetrics"
            )
        ]
        try:
            resource = resource_json(
                resource_metrics.get("resource"),
                field_json(resource_metrics, "schemaUrl", "schema_url", ""),
                limits,
            )
        except InvalidItem as problem:
            for scope_metrics in scopes:
                _reject_all(batch, scope_metrics.get("metrics"), f"resource: {problem}")
            continue
        for scope_metrics in scopes:
            metrics = as_list(scope_metrics.get("metrics"), "metrics")
            try:
                scope = scope_json(
                    scope_metrics.get("scope"),
                    field_json(scope_metrics, "schemaUrl", "schema_url", ""),
                    limits,
                )
            except InvalidItem as problem:
                _reject_all(batch, metrics, f"scope: {problem}")
                continue
            for metric in metrics:
                _metric_json(as_dict(metric, "metrics[]"), resource, scope, limits, batch)
    return batch


def _metric_json(
    metric: dict[str, Any],
    resource: Resource,
    scope: Scope,
    limits: DecodeLimits,
    batch: DecodedBatch,
) -> None:
    found = _data_json(metric)
    if found is None:
        return
    kind, data = found
    points = as_list(field_json(data, "dataPoints", "data_points"), "dataPoints")
    name = clean_text(str(metric.get("name") or ""), NAME_LIMIT)
    try:
        temporality = enum_json(
            field_json(data, "aggregationTemporality", "aggregation_temporality"),
            "aggregationTemporality",
            TEMPORALITIES,
        )
        monotonic = field_json(data, "isMonotonic", "is_monotonic", False)
        stream = _stream(
            name,
            kind,
            str(metric.get("unit") or ""),
            str(metric.get("description") or ""),
            temporality if kind in (SUM, HISTOGRAM, EXPONENTIAL_HISTOGRAM) else 0,
            kind == SUM and (monotonic is True or monotonic == "true"),
            resource,
            scope,
            limits,
        )
    except InvalidItem as problem:
        for _ in points:
            batch.reject(_describe(name, problem))
        return
    convert = _JSON_POINTS[kind]
    for point in points:
        try:
            batch.items.append(convert(point, stream, limits))
        except (InvalidItem, MalformedPayload) as problem:
            batch.reject(_describe(name, problem))


def _data_json(metric: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for key, kind in _JSON_KINDS:
        data = metric.get(key)
        if data is not None:
            return kind, as_dict(data, key)
    return None


def _reject_all(batch: DecodedBatch, metrics: Any, reason: str) -> None:
    """Reject every point under a resource or scope that itself could not be read."""
    for metric in metrics if isinstance(metrics, list) else ():
        try:
            found = _data_json(metric) if isinstance(metric, dict) else None
        except MalformedPayload:
            found = None
        points = field_json(found[1], "dataPoints", "data_points") if found else None
        for _ in points if isinstance(points, list) else ():
            batch.reject(reason)


def _point_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    if not isinstance(point, dict):
        raise InvalidItem("a data point must be a JSON object")
    time = int_json(field_json(point, "timeUnixNano", "time_unix_nano"), "timeUnixNano")
    start = int_json(
        field_json(point, "startTimeUnixNano", "start_time_unix_nano"), "startTimeUnixNano"
    )
    _check_times(time, start, limits)
    attributes, _ = attributes_json(point.get("attributes"), limits)
    return MetricPoint(stream, attributes, time, start, int_json(point.get("flags"), "flags"))


def _number_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    as_double = field_json(point, "asDouble", "as_double")
    as_int = field_json(point, "asInt", "as_int")
    if as_double is not None:
        record.value = float_json(as_double, "asDouble")
    elif as_int is not None:
        record.value = float(int_json(as_int, "asInt"))
    else:
        _require_no_recorded_value(record)
    record.exemplars = _exemplars_json(point.get("exemplars"), limits)
    return record


def _histogram_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    _fill_counts_json(record, point)
    record.explicit_bounds = [
        float_json(bound, "explicitBounds")
        for bound in as_list(
            field_json(point, "explicitBounds", "explicit_bounds"), "explicitBounds"
        )
    ]
    record.bucket_counts = _ints_json(
        field_json(point, "bucketCounts", "bucket_counts"), "bucketCounts"
    )
    _check_histogram(record)
    record.exemplars = _exemplars_json(point.get("exemplars"), limits)
    return record


def _exponential_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    _fill_counts_json(record, point)
    record.scale = int_json(point.get("scale"), "scale")
    record.zero_count = _count(
        int_json(field_json(point, "zeroCount", "zero_count"), "zeroCount"), "zeroCount"
    )
    # proto3 JSON omits zero values, so an absent threshold is 0, not unknown.
    threshold = field_json(point, "zeroThreshold", "zero_threshold")
    record.zero_threshold = 0.0 if threshold is None else float_json(threshold, "zeroThreshold")
    for side in ("positive", "negative"):
        buckets = point.get(side)
        if buckets is not None and not isinstance(buckets, dict):
            raise InvalidItem(f"{side} must be a JSON object with offset and bucketCounts")
        buckets = buckets or {}
        offset = int_json(buckets.get("offset"), f"{side}.offset")
        counts = _ints_json(
            field_json(buckets, "bucketCounts", "bucket_counts"), f"{side}.bucketCounts"
        )
        if side == "positive":
            record.positive_offset, record.positive_bucket_counts = offset, counts
        else:
            record.negative_offset, record.negative_bucket_counts = offset, counts
    _check_exponential(record)
    record.exemplars = _exemplars_json(point.get("exemplars"), limits)
    return record


def _summary_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    record.count = _count(int_json(point.get("count"), "count"), "count")
    raw_sum = point.get("sum")
    record.sum = 0.0 if raw_sum is None else float_json(raw_sum, "sum")
    pairs = []
    for item in as_list(field_json(point, "quantileValues", "quantile_values"), "quantileValues"):
        if not isinstance(item, dict):
            raise InvalidItem("each quantileValues entry must be an object")
        quantile, value = item.get("quantile"), item.get("value")
        pairs.append(
            (
                0.0 if quantile is None else float_json(quantile, "quantile"),
                0.0 if value is None else float_json(value, "quantile value"),
            )
        )
    record.quantiles = _quantiles(pairs)
    return record


def _fill_counts_json(record: MetricPoint, point: dict[str, Any]) -> None:
    """count, and the optional sum/min/max of both histogram kinds."""
    record.count = _count(int_json(point.get("count"), "count"), "count")
    for name in ("sum", "min", "max"):
        raw = point.get(name)
        setattr(record, name, None if raw is None else float_json(raw, name))


def _ints_json(values: Any, field: str) -> list[int]:
    return [int_json(value, field) for value in as_list(values, field)]


def _exemplars_json(exemplars: Any, limits: DecodeLimits) -> list[dict[str, Any]]:
    result = []
    for exemplar in as_list(exemplars, "exemplars"):
        if not isinstance(exemplar, dict):
            raise InvalidItem("each exemplar must be a JSON object")
        as_double = field_json(exemplar, "asDouble", "as_double")
        as_int = field_json(exemplar, "asInt", "as_int")
        value: float | int | None = None
        if as_double is not None:
            value = float_json(as_double, "exemplar asDouble")
        elif as_int is not None:
            value = int_json(as_int, "exemplar asInt")
        attributes, _ = attributes_json(
            field_json(exemplar, "filteredAttributes", "filtered_attributes"), limits
        )
        result.append(
            _exemplar(
                int_json(field_json(exemplar, "timeUnixNano", "time_unix_nano"), "exemplar time"),
                value,
                id_json(
                    field_json(exemplar, "traceId", "trace_id"),
                    "exemplar traceId",
                    TRACE_ID_BYTES,
                    required=False,
                ),
                id_json(
                    field_json(exemplar, "spanId", "span_id"),
                    "exemplar spanId",
                    SPAN_ID_BYTES,
                    required=False,
                ),
                attributes,
            )
        )
    return result


_JSON_POINTS: dict[str, Callable[[Any, MetricStream, DecodeLimits], MetricPoint]] = {
    GAUGE: _number_json,
    SUM: _number_json,
    HISTOGRAM: _histogram_json,
    EXPONENTIAL_HISTOGRAM: _exponential_json,
    SUMMARY: _summary_json,
}


# ---------------------------------------------------------------- shared checks


def _stream(
    name: str,
    kind: str,
    unit: str,
    description: str,
    temporality: int,
    monotonic: bool,
    resource: Resource,
    scope: Scope,
    limits: DecodeLimits,
) -> MetricStream:
    if not name:
        raise InvalidItem("metric name is missing")
    if temporality not in (0, 1, 2):
        raise InvalidItem(
            f"aggregationTemporality {temporality} is not a known value (1 delta, 2 cumulative)"
        )
    return MetricStream(
        name=name,
        type=kind,
        unit=clean_text(unit, NAME_LIMIT),
        description=clean_text(description, limits.max_value_chars),
        temporality=temporality,
        is_monotonic=bool(monotonic),
        resource=resource,
        scope=scope,
    )


def _check_times(time: int, start: int, limits: DecodeLimits) -> None:
    if time <= 0:
        raise InvalidItem("timeUnixNano is missing")
    limits.check_time(time, "timeUnixNano")
    if start < 0:
        raise InvalidItem("startTimeUnixNano must not be negative")
    if start > time:
        raise InvalidItem("startTimeUnixNano is after timeUnixNano")


def _require_no_recorded_value(record: MetricPoint) -> None:
    # Only a point flagged "no recorded value" (a gap marker) may come without a value.
    if not record.flags & FLAG_NO_RECORDED_VALUE:
        raise InvalidItem("point has no value; send asDouble or asInt")


def _count(value: int, field: str) -> int:
    if not 0 <= value <= INT64_MAX:
        raise InvalidItem(f"{field} {value} is outside 0..{INT64_MAX}")
    return value


def _check_bucket_counts(counts: list[int], field: str) -> None:
    if counts and (min(counts) < 0 or max(counts) > INT64_MAX):
        raise InvalidItem(f"{field} must hold counts between 0 and {INT64_MAX}")


def _check_histogram(record: MetricPoint) -> None:
    bounds = record.explicit_bounds or []
    counts = record.bucket_counts or []
    if not (counts or bounds):
        return  # the data model allows a histogram of count and sum only
    if len(counts) != len(bounds) + 1:
        raise InvalidItem(
            f"bucketCounts has {len(counts)} entries but explicitBounds has {len(bounds)}; "
            "send one more count than bounds (or neither)"
        )
    if any(math.isnan(bound) for bound in bounds) or any(
        lower >= upper for lower, upper in zip(bounds, bounds[1:], strict=False)
    ):
        raise InvalidItem("explicitBounds must be strictly increasing numbers")
    _check_bucket_counts(counts, "bucketCounts")


def _check_exponential(record: MetricPoint) -> None:
    scale = record.scale or 0
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise InvalidItem(f"scale {scale} is outside {MIN_SCALE}..{MAX_SCALE}")
    for side, offset, counts in (
        ("positive", record.positive_offset, record.positive_bucket_counts),
        ("negative", record.negative_offset, record.negative_bucket_counts),
    ):
        if not INT32_MIN <= (offset or 0) <= INT32_MAX:
            raise InvalidItem(f"{side}.offset {offset} is outside the int32 range")
        _check_bucket_counts(counts or [], f"{side}.bucketCounts")
    threshold = record.zero_threshold or 0.0
    if math.isnan(threshold) or threshold < 0:
        raise InvalidItem("zeroThreshold must be a non-negative number")


def _quantiles(pairs: list[tuple[float, float]]) -> list[dict[str, Any]]:
    quantiles = []
    for quantile, value in pairs:
        if not 0.0 <= quantile <= 1.0:
            raise InvalidItem(f"quantile {quantile} is outside 0..1")
        quantiles.append({"quantile": quantile, "value": _json_double(value)})
    return quantiles


def _exemplar(
    time_unix_nano: int,
    value: float | int | None,
    trace_id: bytes | None,
    span_id: bytes | None,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    return {
        "time_unix_nano": time_unix_nano,
        "value": _json_double(value) if isinstance(value, float) else value,
        "trace_id": trace_id.hex() if trace_id else None,
        "span_id": span_id.hex() if span_id else None,
        "filtered_attributes": attributes,
    }


def _json_double(number: float) -> float | str:
    # jsonb cannot hold NaN or infinities; keep them readable as proto3 JSON spells them.
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def _describe(name: str, problem: Exception) -> str:
    label = f"metric {name!r:.80}" if name else "metric"
    return f"{label}: {problem}"
