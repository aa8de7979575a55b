"""Hypothesis strategies for OTLP bodies: random messages of the three signals as protobuf
and as OTLP JSON, with plausible and hostile values mixed at every field."""

from __future__ import annotations

from functools import cache
from typing import Any

from api.fuzz.values import json_values, nested, numbers, text, unix_nanos
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from otlp_testkit import attributes_json, attributes_pb, value_json, value_pb

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
UINT32 = st.integers(min_value=0, max_value=2**32 - 1)
UINT64 = st.integers(min_value=0, max_value=2**64 - 1)
INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
SIGNALS = ("traces", "logs", "metrics")


def _maybe(strategy: st.SearchStrategy[Any], junk: st.SearchStrategy[Any]) -> Any:
    """Mostly `strategy`; now and then `junk` in its place."""
    return st.one_of(strategy, strategy, strategy, junk)


@cache  # strategies are immutable; building them anew per draw is slow
def _plain_values(pb: bool) -> st.SearchStrategy[Any]:
    """Attribute values as Python values: what an SDK sets, nested up to past our limit
    (protobuf itself parses about 31 nested maps, so it stops there)."""
    scalars = st.one_of(
        text(), INT64, st.floats(), st.booleans(), *([st.binary(max_size=8)] if pb else [])
    )
    shallow = st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=8,
    )
    deep = st.integers(min_value=10, max_value=30 if pb else 200).map(nested)
    return st.one_of(shallow, shallow, shallow, deep)


@cache  # strategies are immutable; building them anew per draw is slow
def _ids(size: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(min_size=size, max_size=size),
        st.binary(min_size=size, max_size=size),
        st.sampled_from([b"", bytes(size), b"\x01" * (size + 1)]),
        st.binary(max_size=20),
    )


@cache  # strategies are immutable; building them anew per draw is slow
def _attributes(pb: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.text(max_size=12), _plain_values(pb), max_size=3)


# ---------------------------------------------------------------- plain records


@cache
@st.composite
def span_records(draw: st.DrawFn, pb: bool) -> dict[str, Any]:
    start = draw(unix_nanos())
    return {
        "trace_id": draw(_ids(16)),
        "span_id": draw(_ids(8)),
        "parent_span_id": draw(st.one_of(st.just(b""), _ids(8))),
        "name": draw(text()),
        "kind": draw(_maybe(st.integers(min_value=0, max_value=5), INT32)),
        "start": start,
        "end": draw(st.one_of(st.just(min(start + 1000, 2**64 - 1)), unix_nanos())),
        "attributes": draw(_attributes(pb)),
        "events": draw(st.lists(st.tuples(unix_nanos(), text(), _attributes(pb)), max_size=2)),
        "links": draw(st.lists(st.tuples(_ids(16), _ids(8), _attributes(pb)), max_size=1)),
        "status": draw(_maybe(st.integers(min_value=0, max_value=2), INT32)),
        "flags": draw(UINT32),
        "dropped": draw(UINT32),
    }


@cache
@st.composite
def log_records(draw: st.DrawFn, pb: bool) -> dict[str, Any]:
    return {
        "time": draw(unix_nanos()),
        "observed": draw(unix_nanos()),
        "severity": draw(_maybe(st.integers(min_value=0, max_value=24), INT32)),
        "severity_text": draw(text()),
        "body": draw(_plain_values(pb)),
        "attributes": draw(_attributes(pb)),
        "trace_id": draw(st.one_of(st.just(b""), _ids(16))),
        "span_id": draw(st.one_of(st.just(b""), _ids(8))),
        "flags": draw(UINT32),
        "event_name": draw(text()),
    }


@cache
@st.composite
def metric_records(draw: st.DrawFn, pb: bool) -> dict[str, Any]:
    kind = draw(st.sampled_from(["gauge", "sum", "histogram", "exponentialHistogram", "summary"]))
    points = []
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        bounds = draw(st.lists(st.floats(), max_size=4))
        points.append(
            {
                "time": draw(unix_nanos()),
                "start": draw(st.one_of(st.just(0), unix_nanos())),
                "attributes": draw(_attributes(pb)),
                "value": draw(st.one_of(st.floats(), INT64)),
                "count": draw(UINT64),
                "sum": draw(st.floats()),
                "bounds": bounds,
                "counts": draw(st.lists(UINT64, max_size=len(bounds) + 2)),
                "scale": draw(_maybe(st.integers(min_value=-10, max_value=20), INT32)),
                "offset": draw(INT32),
                "quantiles": draw(st.lists(st.tuples(st.floats(), st.floats()), max_size=3)),
                "flags": draw(UINT32),
            }
        )
    return {
        "name": draw(text()),
        "unit": draw(text()),
        "kind": kind,
        "temporality": draw(_maybe(st.integers(min_value=0, max_value=2), INT32)),
        "monotonic": draw(st.booleans()),
        "points": points,
    }


RECORDS = {"traces": span_records, "logs": log_records, "metrics": metric_records}


@cache
@st.composite
def batches(draw: st.DrawFn, signal: str, pb: bool) -> dict[str, Any]:
    """One or two resources, each with a scope and a few records of `signal`."""
    return {
        "resources": draw(
            st.lists(
                st.tuples(_attributes(pb), text(), st.lists(RECORDS[signal](pb), max_size=3)),
                min_size=1,
                max_size=2,
            )
        )
    }


# ---------------------------------------------------------------- protobuf


def _span_pb(record: dict[str, Any], message: Any) -> None:
    message.trace_id, message.span_id = record["trace_id"], record["span_id"]
    message.parent_span_id, message.name = record["parent_span_id"], record["name"]
    message.kind, message.flags = record["kind"], record["flags"]
    message.start_time_unix_nano, message.end_time_unix_nano = record["start"], record["end"]
    message.attributes.extend(attributes_pb(record["attributes"]))
    message.status.code = record["status"]
    message.dropped_attributes_count = record["dropped"]
    for moment, name, attributes in record["events"]:
        message.events.add(time_unix_nano=moment, name=name, attributes=attributes_pb(attributes))
    for trace_id, span_id, attributes in record["links"]:
        message.links.add(trace_id=trace_id, span_id=span_id, attributes=attributes_pb(attributes))


def _log_pb(record: dict[str, Any], message: Any) -> None:
    message.time_unix_nano, message.observed_time_unix_nano = record["time"], record["observed"]
    message.severity_number, message.severity_text = record["severity"], record["severity_text"]
    message.body.CopyFrom(value_pb(record["body"]))
    message.attributes.extend(attributes_pb(record["attributes"]))
    message.trace_id, message.span_id = record["trace_id"], record["span_id"]
    message.flags, message.event_name = record["flags"], record["event_name"]


def _metric_pb(record: dict[str, Any], message: Any) -> None:
    message.name, message.unit = record["name"], record["unit"]
    kind = {"exponentialHistogram": "exponential_histogram"}.get(record["kind"], record["kind"])
    data = getattr(message, kind)
    if kind in ("sum", "histogram", "exponential_histogram"):
        data.aggregation_temporality = record["temporality"]
    if kind == "sum":
        data.is_monotonic = record["monotonic"]
    for point in record["points"]:
        added = data.data_points.add(time_unix_nano=point["time"], flags=point["flags"])
        added.start_time_unix_nano = point["start"]
        added.attributes.extend(attributes_pb(point["attributes"]))
        if kind in ("gauge", "sum"):
            value = point["value"]
            if isinstance(value, float):
                added.as_double = value
            else:
                added.as_int = value
            continue
        added.count, added.sum = point["count"], point["sum"]
        if kind == "histogram":
            added.explicit_bounds.extend(point["bounds"])
            added.bucket_counts.extend(point["counts"])
        elif kind == "exponential_histogram":
            added.scale, added.positive.offset = point["scale"], point["offset"]
            added.positive.bucket_counts.extend(point["counts"])
        else:
            for quantile, value in point["quantiles"]:
                added.quantile_values.add(quantile=quantile, value=value)


def protobuf_body(signal: str, batch: dict[str, Any]) -> bytes:
    if signal == "traces":
        request: Any = trace_service_pb2.ExportTraceServiceRequest()
        blocks, scopes, items, fill = "resource_spans", "scope_spans", "spans", _span_pb
    elif signal == "logs":
        request = logs_service_pb2.ExportLogsServiceRequest()
        blocks, scopes, items, fill = "resource_logs", "scope_logs", "log_records", _log_pb
    else:
        request = metrics_service_pb2.ExportMetricsServiceRequest()
        blocks, scopes, items, fill = "resource_metrics", "scope_metrics", "metrics", _metric_pb
    for attributes, scope_name, records in batch["resources"]:
        block = getattr(request, blocks).add()
        block.resource.attributes.extend(attributes_pb(attributes))
        scope = getattr(block, scopes).add()
        scope.scope.name = scope_name
        for record in records:
            fill(record, getattr(scope, items).add())
    return request.SerializeToString()


# ---------------------------------------------------------------- JSON


def _span_json(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "traceId": record["trace_id"].hex(),
        "spanId": record["span_id"].hex(),
        "parentSpanId": record["parent_span_id"].hex(),
        "name": record["name"],
        "kind": record["kind"],
        "startTimeUnixNano": str(record["start"]),
        "endTimeUnixNano": record["end"],
        "attributes": attributes_json(record["attributes"]),
        "events": [
            {"timeUnixNano": str(moment), "name": name, "attributes": attributes_json(attrs)}
            for moment, name, attrs in record["events"]
        ],
        "links": [
            {"traceId": trace.hex(), "spanId": span.hex(), "attributes": attributes_json(attrs)}
            for trace, span, attrs in record["links"]
        ],
        "status": {"code": record["status"]},
        "flags": record["flags"],
        "droppedAttributesCount": record["dropped"],
    }


def _log_json(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "timeUnixNano": str(record["time"]),
        "observedTimeUnixNano": record["observed"],
        "severityNumber": record["severity"],
        "severityText": record["severity_text"],
        "body": value_json(record["body"]),
        "attributes": attributes_json(record["attributes"]),
        "traceId": record["trace_id"].hex(),
        "spanId": record["span_id"].hex(),
        "flags": record["flags"],
        "eventName": record["event_name"],
    }


def _number(value: float) -> Any:
    # proto3 JSON spells special doubles as strings.
    return value if value == value and abs(value) != float("inf") else str(value)


def _metric_json(record: dict[str, Any]) -> dict[str, Any]:
    points = []
    for point in record["points"]:
        value = point["value"]
        points.append(
            {
                "timeUnixNano": str(point["time"]),
                "startTimeUnixNano": str(point["start"]),
                "attributes": attributes_json(point["attributes"]),
                "asDouble" if isinstance(value, float) else "asInt": _number(value)
                if isinstance(value, float)
                else str(value),
                "count": str(point["count"]),
                "sum": _number(point["sum"]),
                "explicitBounds": [_number(bound) for bound in point["bounds"]],
                "bucketCounts": [str(count) for count in point["counts"]],
                "scale": point["scale"],
                "positive": {"offset": point["offset"], "bucketCounts": point["counts"]},
                "quantileValues": [
                    {"quantile": _number(q), "value": _number(v)} for q, v in point["quantiles"]
                ],
                "flags": point["flags"],
            }
        )
    data = {
        "dataPoints": points,
        "aggregationTemporality": record["temporality"],
        "isMonotonic": record["monotonic"],
    }
    return {"name": record["name"], "unit": record["unit"], record["kind"]: data}


_JSON_KEYS = {
    "traces": ("resourceSpans", "scopeSpans", "spans", _span_json),
    "logs": ("resourceLogs", "scopeLogs", "logRecords", _log_json),
    "metrics": ("resourceMetrics", "scopeMetrics", "metrics", _metric_json),
}


def json_document(signal: str, batch: dict[str, Any]) -> dict[str, Any]:
    blocks, scopes, items, convert = _JSON_KEYS[signal]
    return {
        blocks: [
            {
                "resource": {"attributes": attributes_json(attributes)},
                scopes: [{"scope": {"name": scope}, items: [convert(r) for r in records]}],
            }
            for attributes, scope, records in batch["resources"]
        ]
    }


def json_with_junk(signal: str) -> st.SearchStrategy[Any]:
    """OTLP JSON documents; some with a random JSON value in place of the whole body."""
    documents = batches(signal, pb=False).map(lambda batch: json_document(signal, batch))
    return st.one_of(documents, documents, documents, json_values(), numbers())
