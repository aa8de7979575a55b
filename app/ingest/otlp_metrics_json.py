"""OTLP metrics as JSON (already parsed) → metric points; the JSON half of otlp_metrics.py.

JSON rules as in otlp_common.py: camelCase or snake_case keys, 64-bit integers as numbers
or strings, enums as numbers or names. proto3 JSON omits zero values, so an absent count,
threshold or quantile is 0, while an absent optional (histogram sum, min, max) is unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    INT64_MAX,
    NAME_LIMIT,
    UINT32_MAX,
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
    as_dict,
    as_list,
    attributes_json,
    clean_text,
    enum_json,
    field_json,
    float_json,
    id_json,
    int_json,
    resource_json,
    scope_json,
)

# Points decoded between two pauses of the sliced decoders (see app/ingest/offload.py).
POINTS_PER_STEP = 32
TEMPORALITIES = {
    "AGGREGATION_TEMPORALITY_UNSPECIFIED": 0,
    "AGGREGATION_TEMPORALITY_DELTA": 1,
    "AGGREGATION_TEMPORALITY_CUMULATIVE": 2,
}
# JSON key of each kind (both spellings of the exponential histogram) → metric type.
_JSON_KINDS = (
    ("gauge", GAUGE),
    ("sum", SUM),
    ("histogram", HISTOGRAM),
    ("exponentialHistogram", EXPONENTIAL_HISTOGRAM),
    ("exponential_histogram", EXPONENTIAL_HISTOGRAM),
    ("summary", SUMMARY),
)


def decode_metrics_json(document: Any, limits: DecodeLimits) -> MetricBatch:
    """`document` is the request body already parsed from JSON."""
    return drive(decode_metrics_json_steps(document, limits))


def decode_metrics_json_steps(document: Any, limits: DecodeLimits) -> Steps[MetricBatch]:
    """`decode_metrics_json` as sliced steps: it yields after each metric and every
    `POINTS_PER_STEP` points of one."""
    root = as_dict(document, "request body")
    batch = MetricBatch(items=[])
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
                yield from _metric_json(
                    as_dict(metric, "metrics[]"), resource, scope, limits, batch
                )
                yield
    return batch


def _metric_json(
    metric: dict[str, Any],
    resource: Resource,
    scope: Scope,
    limits: DecodeLimits,
    batch: MetricBatch,
) -> Steps[None]:
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
        stream = make_stream(
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
            batch.reject(describe(name, problem))
        return
    convert = _JSON_POINTS[kind]
    for number, point in enumerate(points, 1):
        try:
            batch.items.append(convert(point, stream, limits))
        except (InvalidItem, MalformedPayload) as problem:
            batch.reject(describe(name, problem))
        if not number % POINTS_PER_STEP:
            yield


def _data_json(metric: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for key, kind in _JSON_KINDS:
        data = metric.get(key)
        if data is not None:
            return kind, as_dict(data, key)
    return None


def _reject_all(batch: MetricBatch, metrics: Any, reason: str) -> None:
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
    check_times(time, start, limits)
    attributes, _ = attributes_json(point.get("attributes"), limits)
    # flags is a uint32 on the wire; bounding it here keeps one point from failing the COPY.
    flags = int_json(point.get("flags"), "flags", minimum=0, maximum=UINT32_MAX)
    return MetricPoint(stream, attributes, time, start, flags)


def _number_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    as_double = field_json(point, "asDouble", "as_double")
    as_int = field_json(point, "asInt", "as_int")
    if as_double is not None:
        record.value = float_json(as_double, "asDouble")
    elif as_int is not None:
        record.value = float(int_json(as_int, "asInt"))
    else:
        require_no_recorded_value(record)
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
    check_histogram(record)
    record.exemplars = _exemplars_json(point.get("exemplars"), limits)
    return record


def _exponential_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    _fill_counts_json(record, point)
    record.scale = int_json(point.get("scale"), "scale")
    record.zero_count = check_count(
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
    check_exponential(record)
    record.exemplars = _exemplars_json(point.get("exemplars"), limits)
    return record


def _summary_json(point: Any, stream: MetricStream, limits: DecodeLimits) -> MetricPoint:
    record = _point_json(point, stream, limits)
    record.count = check_count(int_json(point.get("count"), "count"), "count")
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
    record.quantiles = quantile_records(pairs)
    return record


def _fill_counts_json(record: MetricPoint, point: dict[str, Any]) -> None:
    """count, and the optional sum/min/max of both histogram kinds."""
    record.count = check_count(int_json(point.get("count"), "count"), "count")
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
            value = int_json(as_int, "exemplar asInt", maximum=INT64_MAX)
        attributes, _ = attributes_json(
            field_json(exemplar, "filteredAttributes", "filtered_attributes"), limits
        )
        result.append(
            exemplar_record(
                int_json(
                    field_json(exemplar, "timeUnixNano", "time_unix_nano"),
                    "exemplar timeUnixNano",
                    minimum=0,
                ),
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
