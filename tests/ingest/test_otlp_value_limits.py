"""OTLP values nested too deep cost only their items; events and links past the limit are
dropped and counted (app/ingest/otlp_common.py and the three decoders); no database."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from otlp_testkit import (
    SpanSpec,
    attributes_pb,
    new_span_id,
    new_trace_id,
    span_json,
    traces_json,
    traces_pb,
    value_json,
)
from otlp_testkit import attributes_json as kv_json

from app.domain.records import DecodedBatch
from app.ingest.otlp_common import NANOS_PER_SECOND, DecodeLimits
from app.ingest.otlp_logs import decode_logs_json, decode_logs_protobuf
from app.ingest.otlp_metrics import decode_metrics_json, decode_metrics_protobuf
from app.ingest.otlp_traces import decode_traces_json, decode_traces_protobuf

NOW = time.time_ns()
DAY = 86_400 * NANOS_PER_SECOND
LIMITS = DecodeLimits(oldest_unix_nano=NOW - 7 * DAY, newest_unix_nano=NOW + DAY)
DEPTH = LIMITS.max_value_depth
Decoder = Callable[[dict[str, Any]], DecodedBatch]


def nested(depth: int) -> Any:
    """`depth` maps and lists, alternating, around a string."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def span(attributes: dict[str, Any] | None = None) -> SpanSpec:
    return SpanSpec(
        new_trace_id(), new_span_id(), "op", NOW - 1000, NOW, attributes=attributes or {}
    )


def spans_json(*resources: list[SpanSpec], resource_attributes: Any = None) -> dict[str, Any]:
    blocks = [traces_json(spans)["resourceSpans"][0] for spans in resources]
    if resource_attributes is not None:
        blocks[0]["resource"]["attributes"] = kv_json(resource_attributes)
    return {"resourceSpans": blocks}


def spans_pb(*resources: list[SpanSpec], resource_attributes: Any = None) -> bytes:
    request = trace_service_pb2.ExportTraceServiceRequest()
    for spans in resources:
        request.resource_spans.extend(traces_pb(spans).resource_spans)
    if resource_attributes is not None:
        attributes = request.resource_spans[0].resource.attributes
        del attributes[:]
        attributes.extend(attributes_pb(resource_attributes))
    return request.SerializeToString()


TRACE_DECODERS: dict[str, Callable[..., DecodedBatch]] = {
    "json": lambda *r, **k: decode_traces_json(spans_json(*r, **k), LIMITS),
    "protobuf": lambda *r, **k: decode_traces_protobuf(spans_pb(*r, **k), LIMITS),
}


@pytest.mark.parametrize("encoding", TRACE_DECODERS)
def test_a_span_attribute_too_deep_rejects_that_span(encoding: str) -> None:
    decode = TRACE_DECODERS[encoding]
    batch = decode([span({"deep": nested(DEPTH + 1)}), span({"fine": nested(DEPTH)})])
    assert len(batch.items) == 1 and batch.rejected == 1
    assert "attribute 'deep'" in batch.error_message()
    assert f"nested deeper than {DEPTH} levels" in batch.error_message()
    assert batch.items[0].attributes == {"fine": nested(DEPTH)}


@pytest.mark.parametrize("encoding", TRACE_DECODERS)
def test_a_resource_attribute_too_deep_rejects_its_spans_only(encoding: str) -> None:
    decode = TRACE_DECODERS[encoding]
    batch = decode([span(), span()], [span()], resource_attributes={"deep": nested(DEPTH + 1)})
    assert (len(batch.items), batch.rejected) == (1, 2)
    assert "resource: attribute 'deep'" in batch.error_message()


def test_event_and_link_attributes_are_bounded_too() -> None:
    document = spans_json([span(), span()])
    first, second = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    first["events"] = [{"name": "e", "attributes": kv_json({"deep": nested(DEPTH + 1)})}]
    second["links"] = [
        {"traceId": new_trace_id(), "spanId": new_span_id(),
         "attributes": kv_json({"deep": nested(DEPTH + 1)})}
    ]  # fmt: skip
    batch = decode_traces_json(document, LIMITS)
    assert (len(batch.items), batch.rejected) == (0, 2)


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_events_and_links_past_the_limits_are_dropped_and_counted(encoding: str) -> None:
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [span_json(span())]}]}]}
    only = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    only["events"] = [{"name": f"e{n}", "timeUnixNano": str(NOW)} for n in range(135)]
    only["links"] = [{"traceId": new_trace_id(), "spanId": new_span_id()} for _ in range(130)]
    only["droppedEventsCount"] = 3
    if encoding == "json":
        batch = decode_traces_json(document, LIMITS)
    else:
        request = traces_pb([span()])
        message = request.resource_spans[0].scope_spans[0].spans[0]
        for number in range(135):
            message.events.add(name=f"e{number}", time_unix_nano=NOW)
        for _ in range(130):
            message.links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
        message.dropped_events_count = 3
        batch = decode_traces_protobuf(request.SerializeToString(), LIMITS)
    [record] = batch.items
    assert [event["name"] for event in record.events] == [f"e{n}" for n in range(128)]
    assert (record.dropped_events_count, len(record.links), record.dropped_links_count) == (
        10,
        128,
        2,
    )


def logs_json(*bodies: Any, resource_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    records = [{"timeUnixNano": str(NOW), "body": body} for body in bodies]
    second = {
        "scopeLogs": [{"logRecords": [{"timeUnixNano": str(NOW), "body": {"stringValue": "kept"}}]}]
    }
    first: dict[str, Any] = {"scopeLogs": [{"logRecords": records}]}
    if resource_attributes is not None:
        first["resource"] = {"attributes": kv_json(resource_attributes)}
    return {"resourceLogs": [first, second]}


LOG_DECODERS: dict[str, Decoder] = {
    "json": lambda document: decode_logs_json(document, LIMITS),
    "protobuf": lambda document: decode_logs_protobuf(
        json_format.ParseDict(
            document, logs_service_pb2.ExportLogsServiceRequest()
        ).SerializeToString(),
        LIMITS,
    ),
}


@pytest.mark.parametrize("encoding", LOG_DECODERS)
def test_a_log_body_too_deep_rejects_that_record(encoding: str) -> None:
    batch = LOG_DECODERS[encoding](
        logs_json(value_json(nested(DEPTH + 1)), value_json(nested(DEPTH)))
    )
    assert (len(batch.items), batch.rejected) == (2, 1)
    assert "log record 0: body: value nested deeper" in batch.error_message()


@pytest.mark.parametrize("encoding", LOG_DECODERS)
def test_a_log_resource_too_deep_rejects_its_records_only(encoding: str) -> None:
    document = logs_json({"stringValue": "a"}, {"stringValue": "b"},
                         resource_attributes={"deep": nested(DEPTH + 1)})  # fmt: skip
    batch = LOG_DECODERS[encoding](document)
    assert [record.body for record in batch.items] == ["kept"]
    assert batch.rejected == 2
    assert "resource: attribute 'deep'" in batch.error_message()


def metrics_json(attributes: dict[str, Any], resource_attributes: Any = None) -> dict[str, Any]:
    def gauge(name: str, point_attributes: dict[str, Any]) -> dict[str, Any]:
        point = {"timeUnixNano": str(NOW), "asDouble": 1.0, "attributes": kv_json(point_attributes)}
        return {"name": name, "gauge": {"dataPoints": [point]}}

    first: dict[str, Any] = {
        "scopeMetrics": [{"metrics": [gauge("a", attributes), gauge("b", {})]}]
    }
    if resource_attributes is not None:
        first["resource"] = {"attributes": kv_json(resource_attributes)}
    return {"resourceMetrics": [first, {"scopeMetrics": [{"metrics": [gauge("c", {})]}]}]}


METRIC_DECODERS: dict[str, Decoder] = {
    "json": lambda document: decode_metrics_json(document, LIMITS),
    "protobuf": lambda document: decode_metrics_protobuf(
        json_format.ParseDict(
            document, metrics_service_pb2.ExportMetricsServiceRequest()
        ).SerializeToString(),
        LIMITS,
    ),
}


@pytest.mark.parametrize("encoding", METRIC_DECODERS)
def test_a_point_attribute_too_deep_rejects_that_point(encoding: str) -> None:
    batch = METRIC_DECODERS[encoding](metrics_json({"deep": nested(DEPTH + 1)}))
    assert sorted(point.stream.name for point in batch.items) == ["b", "c"]
    assert batch.rejected == 1


@pytest.mark.parametrize("encoding", METRIC_DECODERS)
def test_a_metric_resource_too_deep_rejects_its_points_only(encoding: str) -> None:
    batch = METRIC_DECODERS[encoding](
        metrics_json({}, resource_attributes={"deep": nested(DEPTH + 1)})
    )
    assert [point.stream.name for point in batch.items] == ["c"]
    assert batch.rejected == 2
    assert "resource: attribute 'deep'" in batch.error_message()
