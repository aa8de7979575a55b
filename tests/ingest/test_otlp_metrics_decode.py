"""OTLP metrics decoding (protobuf and JSON) and the series identity: pure functions, no I/O."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from support import load_example, shift_to_now

from app.domain.metrics import (
    MetricPoint,
    series_id_of,
)
from app.domain.records import DecodedBatch
from app.ingest.metric_rows import metric_point_rows
from app.ingest.otlp_common import DecodeLimits, MalformedPayload
from app.ingest.otlp_metrics import decode_metrics_json, decode_metrics_protobuf
from app.ingest.series import SeriesRegistry
from app.ingest.store_metrics import assign_series

NOW = time.time_ns()
HOUR = 3600 * 1_000_000_000
LIMITS = DecodeLimits(
    oldest_unix_nano=NOW - 24 * HOUR, newest_unix_nano=NOW + HOUR, retention_label="15d retention"
)
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def _kv(key: str, value: str) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def _request(*metrics: metrics_pb2.Metric) -> bytes:
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.append(_kv("service.name", "checkout"))
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "assistant.meter"
    scope_metrics.scope.version = "2.1"
    scope_metrics.metrics.extend(metrics)
    return request.SerializeToString()


def _json(*metrics: dict[str, Any], resource: Any = None) -> dict[str, Any]:
    return {
        "resourceMetrics": [
            {
                "resource": resource
                or {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                "scopeMetrics": [{"scope": {"name": "assistant.meter"}, "metrics": list(metrics)}],
            }
        ]
    }


def _only(batch: DecodedBatch) -> MetricPoint:
    assert batch.rejected == 0, batch.messages
    assert len(batch.items) == 1
    return batch.items[0]


# ---------------------------------------------------------------- protobuf, each kind


def test_gauge_int_value_is_stored_as_double_with_exemplar() -> None:
    metric = metrics_pb2.Metric(name="queue.depth", unit="{item}", description="waiting")
    point = metric.gauge.data_points.add(time_unix_nano=NOW, as_int=42, flags=0)
    point.attributes.append(_kv("queue", "llm"))
    exemplar = point.exemplars.add(
        time_unix_nano=NOW - 5, as_int=7, trace_id=TRACE_ID, span_id=SPAN_ID
    )
    exemplar.filtered_attributes.append(_kv("user", "u1"))
    record = _only(decode_metrics_protobuf(_request(metric), LIMITS))
    assert record.value == 42.0 and isinstance(record.value, float)
    assert record.stream.type == "gauge"
    assert (record.stream.temporality, record.stream.is_monotonic) == (0, False)
    assert (record.stream.unit, record.stream.description) == ("{item}", "waiting")
    assert record.stream.resource.service_name == "checkout"
    assert (record.stream.scope.name, record.stream.scope.version) == ("assistant.meter", "2.1")
    assert record.attributes == {"queue": "llm"}
    assert record.start_time_unix_nano == 0 and record.time_unix_nano == NOW
    assert record.exemplars == [
        {
            "time_unix_nano": NOW - 5,
            "value": 7,
            "trace_id": TRACE_ID.hex(),
            "span_id": SPAN_ID.hex(),
            "filtered_attributes": {"user": "u1"},
        }
    ]


@pytest.mark.parametrize(
    ("temporality", "monotonic"), [(1, True), (1, False), (2, True), (2, False)]
)
def test_sum_keeps_temporality_and_monotonic(temporality: int, monotonic: bool) -> None:
    metric = metrics_pb2.Metric(name="gen_ai.client.token.usage")
    metric.sum.aggregation_temporality = temporality
    metric.sum.is_monotonic = monotonic
    metric.sum.data_points.add(start_time_unix_nano=NOW - HOUR, time_unix_nano=NOW, as_double=1.5)
    record = _only(decode_metrics_protobuf(_request(metric), LIMITS))
    assert record.stream.type == "sum"
    assert record.stream.temporality == temporality
    assert record.stream.is_monotonic is monotonic
    assert (record.value, record.start_time_unix_nano, record.flags) == (1.5, NOW - HOUR, 0)


def test_histogram_bounds_buckets_and_optional_fields() -> None:
    metric = metrics_pb2.Metric(name="http.server.duration", unit="ms")
    metric.histogram.aggregation_temporality = 2
    metric.histogram.data_points.add(
        time_unix_nano=NOW,
        count=6,
        sum=123.5,
        min=0.5,
        max=99.0,
        explicit_bounds=[1, 10, 100],
        bucket_counts=[1, 2, 3, 0],
    )
    # sum, min and max are optional: absent is None, not 0.
    metric.histogram.data_points.add(time_unix_nano=NOW + 1, count=0)
    batch = decode_metrics_protobuf(_request(metric), LIMITS)
    assert batch.rejected == 0
    full, empty = batch.items
    assert (full.count, full.sum, full.min, full.max) == (6, 123.5, 0.5, 99.0)
    assert full.explicit_bounds == [1.0, 10.0, 100.0]
    assert full.bucket_counts == [1, 2, 3, 0]
    assert full.stream.temporality == 2 and full.value is None
    assert (empty.count, empty.sum, empty.min, empty.max) == (0, None, None, None)
    assert empty.explicit_bounds == [] and empty.bucket_counts == []


def test_exponential_histogram_both_sides() -> None:
    metric = metrics_pb2.Metric(name="latency")
    metric.exponential_histogram.aggregation_temporality = 1
    point = metric.exponential_histogram.data_points.add(
        time_unix_nano=NOW, count=9, sum=-3.0, scale=3, zero_count=2, zero_threshold=0.001
    )
    point.positive.offset = -2
    point.positive.bucket_counts.extend([1, 2])
    point.negative.offset = 5
    point.negative.bucket_counts.extend([4])
    record = _only(decode_metrics_protobuf(_request(metric), LIMITS))
    assert record.stream.type == "exponential_histogram"
    assert (record.scale, record.zero_count, record.zero_threshold) == (3, 2, 0.001)
    assert (record.positive_offset, record.positive_bucket_counts) == (-2, [1, 2])
    assert (record.negative_offset, record.negative_bucket_counts) == (5, [4])
    assert (record.count, record.sum, record.min, record.max) == (9, -3.0, None, None)


def test_summary_quantiles() -> None:
    metric = metrics_pb2.Metric(name="rpc.duration")
    point = metric.summary.data_points.add(time_unix_nano=NOW, count=10, sum=55.0)
    point.quantile_values.add(quantile=0.0, value=1.0)
    point.quantile_values.add(quantile=0.5, value=5.0)
    point.quantile_values.add(quantile=1.0, value=float("nan"))
    record = _only(decode_metrics_protobuf(_request(metric), LIMITS))
    assert record.stream.type == "summary" and record.stream.temporality == 0
    assert (record.count, record.sum) == (10, 55.0)
    # jsonb has no NaN: it is kept as proto3 JSON spells it.
    assert record.quantiles == [
        {"quantile": 0.0, "value": 1.0},
        {"quantile": 0.5, "value": 5.0},
        {"quantile": 1.0, "value": "NaN"},
    ]


def test_point_without_value_needs_the_no_recorded_value_flag() -> None:
    metric = metrics_pb2.Metric(name="up")
    metric.gauge.data_points.add(time_unix_nano=NOW, flags=1)
    metric.gauge.data_points.add(time_unix_nano=NOW + 1)
    batch = decode_metrics_protobuf(_request(metric), LIMITS)
    assert [item.value for item in batch.items] == [None]
    assert batch.items[0].flags == 1
    assert batch.messages == ["metric 'up': point has no value; send asDouble or asInt"]


def test_nan_gauge_value_is_kept() -> None:
    metric = metrics_pb2.Metric(name="ratio")
    metric.gauge.data_points.add(time_unix_nano=NOW, as_double=float("nan"))
    assert math.isnan(_only(decode_metrics_protobuf(_request(metric), LIMITS)).value)


def test_metric_without_data_is_neither_stored_nor_rejected() -> None:
    batch = decode_metrics_protobuf(_request(metrics_pb2.Metric(name="empty")), LIMITS)
    assert (batch.items, batch.rejected) == ([], 0)


def test_bad_protobuf_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="ExportMetricsServiceRequest"):
        decode_metrics_protobuf(b"\xff\xff\xff", LIMITS)


# ---------------------------------------------------------------- invalid points


def _histogram_point(**fields: Any) -> metrics_pb2.Metric:
    metric = metrics_pb2.Metric(name="h")
    metric.histogram.aggregation_temporality = 2
    metric.histogram.data_points.add(time_unix_nano=NOW, **fields)
    return metric


@pytest.mark.parametrize(
    ("metric", "reason"),
    [
        (
            _histogram_point(count=2, explicit_bounds=[1], bucket_counts=[1, 1, 0]),
            "metric 'h': bucketCounts has 3 entries but explicitBounds has 1; "
            "send one more count than bounds (or neither)",
        ),
        (
            _histogram_point(count=2, explicit_bounds=[5, 1], bucket_counts=[1, 1, 0]),
            "metric 'h': explicitBounds must be strictly increasing numbers",
        ),
        (
            _histogram_point(count=2**63),
            f"metric 'h': count {2**63} is outside 0..{2**63 - 1}",
        ),
        (
            _histogram_point(count=1, explicit_bounds=[1], bucket_counts=[2**63, 0]),
            f"metric 'h': bucketCounts must hold counts between 0 and {2**63 - 1}",
        ),
    ],
)
def test_invalid_histograms_are_rejected_with_reason(
    metric: metrics_pb2.Metric, reason: str
) -> None:
    batch = decode_metrics_protobuf(_request(metric), LIMITS)
    assert (batch.items, batch.rejected, batch.messages) == ([], 1, [reason])


def test_invalid_times_exponential_and_summary_are_rejected() -> None:
    gauge = metrics_pb2.Metric(name="g")
    gauge.gauge.data_points.add(as_double=1)  # no time
    gauge.gauge.data_points.add(time_unix_nano=NOW - 48 * HOUR, as_double=1)
    gauge.gauge.data_points.add(time_unix_nano=NOW + 2 * HOUR, as_double=1)
    gauge.gauge.data_points.add(time_unix_nano=NOW, start_time_unix_nano=NOW + 1, as_double=1)
    gauge.gauge.data_points.add(time_unix_nano=NOW, as_double=2)  # the one good point
    gauge.gauge.data_points.add(
        time_unix_nano=NOW, as_double=1, exemplars=[metrics_pb2.Exemplar(trace_id=b"\x01" * 3)]
    )
    exponential = metrics_pb2.Metric(name="e")
    exponential.exponential_histogram.data_points.add(time_unix_nano=NOW, scale=21)
    summary = metrics_pb2.Metric(name="s")
    summary.summary.data_points.add(time_unix_nano=NOW).quantile_values.add(quantile=1.5)
    batch = decode_metrics_protobuf(_request(gauge, exponential, summary), LIMITS)
    assert [item.value for item in batch.items] == [2.0]
    assert batch.rejected == 7
    assert batch.messages[0] == "metric 'g': timeUnixNano is missing"
    assert batch.messages[1].startswith("metric 'g': timeUnixNano ")
    assert "older than the 15d retention" in batch.messages[1]
    assert "in the future" in batch.messages[2]
    assert batch.messages[3] == "metric 'g': startTimeUnixNano is after timeUnixNano"
    assert batch.messages[4] == "metric 'g': exemplar traceId has 3 bytes; it must have 16"
    assert batch.error_message().endswith("; and 2 more")


# ---------------------------------------------------------------- JSON


def test_example_file_json_and_protobuf_decode_alike() -> None:
    document = shift_to_now(load_example("metrics.json"), NOW)
    from_json = decode_metrics_json(document, LIMITS)
    message = json_format.ParseDict(document, metrics_service_pb2.ExportMetricsServiceRequest())
    from_protobuf = decode_metrics_protobuf(message.SerializeToString(), LIMITS)
    assert from_json.rejected == from_protobuf.rejected == 0
    assert len(from_json.items) == len(from_protobuf.items) == 4
    for left, right in zip(from_json.items, from_protobuf.items, strict=True):
        assert series_id_of(left.stream, left.attributes) == series_id_of(
            right.stream, right.attributes
        )
        for name in MetricPoint.__slots__:
            if name != "stream":
                assert getattr(left, name) == getattr(right, name), name
    counter, gauge, histogram, exponential = from_json.items
    assert (counter.stream.type, counter.stream.temporality, counter.stream.is_monotonic) == (
        "sum",
        1,
        True,
    )
    assert (counter.value, gauge.value) == (5.0, 10.0)
    assert histogram.bucket_counts == [1, 1] and histogram.explicit_bounds == [1.0]
    assert (exponential.positive_offset, exponential.positive_bucket_counts) == (1, [0, 2])
    assert (exponential.zero_count, exponential.min, exponential.max) == (1, 0.0, 5.0)


def test_json_snake_case_strings_and_enum_names() -> None:
    document = _json(
        {
            "name": "tokens",
            "sum": {
                "aggregation_temporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
                "is_monotonic": True,
                "data_points": [
                    {
                        "start_time_unix_nano": str(NOW - HOUR),
                        "time_unix_nano": str(NOW),
                        "as_int": "9007199254740993",
                        "flags": "0",
                    }
                ],
            },
        },
        {
            "name": "latency",
            "exponential_histogram": {
                "aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA",
                "data_points": [
                    {
                        "time_unix_nano": NOW,
                        "count": "3",
                        "zero_count": "1",
                        "zero_threshold": "1e-9",
                        "positive": {"offset": "-1", "bucket_counts": ["1", 1]},
                    }
                ],
            },
        },
        {
            "name": "quantiles",
            "summary": {
                "dataPoints": [
                    {
                        "timeUnixNano": str(NOW),
                        "count": "4",
                        "quantile_values": [{"quantile": 0.99, "value": "Infinity"}, {}],
                    }
                ]
            },
        },
    )
    counter, exponential, summary = decode_metrics_json(document, LIMITS).items
    assert (counter.stream.temporality, counter.stream.is_monotonic) == (2, True)
    assert counter.value == float(9007199254740993)
    assert counter.start_time_unix_nano == NOW - HOUR
    assert exponential.stream.temporality == 1 and exponential.zero_threshold == 1e-9
    assert (exponential.count, exponential.zero_count) == (3, 1)
    assert (exponential.positive_offset, exponential.positive_bucket_counts) == (-1, [1, 1])
    assert (exponential.negative_offset, exponential.negative_bucket_counts) == (0, [])
    # proto3 JSON leaves out zeros: the empty entry is quantile 0 with value 0.
    assert summary.quantiles == [
        {"quantile": 0.99, "value": "Infinity"},
        {"quantile": 0.0, "value": 0.0},
    ]
    assert (summary.count, summary.sum) == (4, 0.0)


def test_json_exemplars_and_histogram_optional_fields() -> None:
    document = _json(
        {
            "name": "h",
            "histogram": {
                "aggregationTemporality": 2,
                "dataPoints": [
                    {
                        "timeUnixNano": str(NOW),
                        "count": "1",
                        "bucketCounts": ["0", "1"],
                        "explicitBounds": [2.5],
                        "exemplars": [
                            {
                                "timeUnixNano": str(NOW),
                                "asDouble": 3.25,
                                "traceId": TRACE_ID.hex().upper(),
                                "spanId": SPAN_ID.hex(),
                                "filteredAttributes": [{"key": "k", "value": {"intValue": "5"}}],
                            }
                        ],
                    }
                ],
            },
        }
    )
    record = _only(decode_metrics_json(document, LIMITS))
    assert (record.sum, record.min, record.max) == (None, None, None)
    assert record.exemplars == [
        {
            "time_unix_nano": NOW,
            "value": 3.25,
            "trace_id": TRACE_ID.hex(),
            "span_id": SPAN_ID.hex(),
            "filtered_attributes": {"k": 5},
        }
    ]


def test_json_invalid_points_and_blocks() -> None:
    good = {"timeUnixNano": str(NOW), "asDouble": 1}
    document = _json(
        {
            "name": "g",
            "gauge": {"dataPoints": [good, {"asDouble": 1}, "nope", {**good, "asInt": "x"}]},
        },
        {"name": "", "gauge": {"dataPoints": [good]}},
        {"name": "s", "sum": {"aggregationTemporality": "WEEKLY", "dataPoints": [good, good]}},
        {
            "name": "h",
            "histogram": {"dataPoints": [{**good, "bucketCounts": ["-1"], "count": "0"}]},
        },
    )
    batch = decode_metrics_json(document, LIMITS)
    assert len(batch.items) == 2  # the first good point, and the one where asDouble wins
    assert batch.rejected == 6
    assert batch.messages == [
        "metric 'g': timeUnixNano is missing",
        "metric 'g': a data point must be a JSON object",
        "metric: metric name is missing",
        "metric 's': aggregationTemporality 'WEEKLY' is not a known value",
        "metric 's': aggregationTemporality 'WEEKLY' is not a known value",
    ]
    assert batch.error_message().endswith("; and 1 more")


def test_json_bad_resource_rejects_every_point_under_it() -> None:
    point = {"timeUnixNano": str(NOW), "asDouble": 1}
    document = _json(
        {"name": "g", "gauge": {"dataPoints": [point, point]}},
        resource={"attributes": [{"key": 7}]},
    )
    batch = decode_metrics_json(document, LIMITS)
    assert (batch.items, batch.rejected) == ([], 2)
    assert batch.messages[0] == "resource: attribute key must be a string"


def test_json_structure_errors_are_malformed() -> None:
    with pytest.raises(MalformedPayload, match="resourceMetrics must be a JSON array"):
        decode_metrics_json({"resourceMetrics": {}}, LIMITS)
    with pytest.raises(MalformedPayload, match="request body must be a JSON object"):
        decode_metrics_json([], LIMITS)


# ---------------------------------------------------------------- series ids and rows


def _stream_point(**attributes: Any) -> MetricPoint:
    document = _json(
        {
            "name": "http.requests",
            "unit": "1",
            "description": "d",
            "sum": {
                "aggregationTemporality": 2,
                "isMonotonic": True,
                "dataPoints": [
                    {
                        "timeUnixNano": str(NOW),
                        "asInt": "1",
                        "attributes": [
                            {"key": key, "value": {"stringValue": value}}
                            for key, value in attributes.items()
                        ],
                    }
                ],
            },
        }
    )
    return _only(decode_metrics_json(document, LIMITS))


def test_assign_series_hashes_each_attribute_set_once_per_request() -> None:
    registry = SeriesRegistry(None, 10)  # type: ignore[arg-type]  # no database needed here
    points = [_stream_point(method="GET"), _stream_point(method="GET"), _stream_point(method="PUT")]
    candidates = assign_series(registry, 1, points)
    assert points[0].series_id == points[1].series_id != points[2].series_id
    assert list(candidates) == [points[0].series_id, points[2].series_id]
    assert candidates[points[0].series_id].attributes == {"method": "GET"}


def test_point_rows_skip_a_repeated_series_instant() -> None:
    first, second = _stream_point(method="GET"), _stream_point(method="GET")
    first.series_id = second.series_id = 11
    part = metric_point_rows(3, [first, second])
    assert part.table == "metric_points" and len(part.rows) == 1
    assert part.rows[0][:2] == (3, 11) and part.rows[0][-1] == 0


def test_json_values_postgres_cannot_hold_are_rejected_per_point() -> None:
    good = {"timeUnixNano": str(NOW), "asDouble": 1}
    document = _json(
        {
            "name": "g",
            "gauge": {
                "dataPoints": [
                    {**good, "flags": str(2**32)},
                    {**good, "exemplars": [{"asInt": str(2**63)}]},
                    {**good, "exemplars": [{"timeUnixNano": "-1"}]},
                    good,
                ]
            },
        }
    )
    batch = decode_metrics_json(document, LIMITS)
    assert len(batch.items) == 1 and batch.rejected == 3
    assert batch.messages[0].startswith("metric 'g': flags 4294967296 is out of range")
    assert batch.messages[1].startswith("metric 'g': exemplar asInt 9223372036854775808 is out")
    assert batch.messages[2].startswith("metric 'g': exemplar timeUnixNano -1 is out of range")
