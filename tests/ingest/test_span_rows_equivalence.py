"""What protobuf ingest stores is what the JSON path stores, value for value.

The protobuf decoder and row builder take fast paths for common values (app/ingest/
otlp_traces.py, rows.py); the JSON decoder is a separate, plain walk. The same payload sent
both ways must give identical span rows (every column, the JSON text of attributes,
resource, scope, events and links included), error events and per-minute rollups: a
diverse payload with every AnyValue kind and every limit, and the specification's OTLP
trace example.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2

from app.config import Settings
from app.ingest.enrich import Enricher
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_traces import decode_traces_json, decode_traces_protobuf
from app.ingest.rollups import rollup_rows
from app.ingest.store import span_parts

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp_examples"
NOW = 1_790_000_000 * 10**9
DAY = 86_400 * 10**9
VALUES: list[Any] = [
    "text",
    "",
    "with\x00nul",
    "x" * 300,
    0,
    -5,
    2**63 - 1,
    -(2**63),
    1.5,
    -0.0,
    math.nan,
    math.inf,
    -math.inf,
    True,
    False,
    b"\x00\xffbytes",
    [],
    {},
    [1, [2, ["three"]]],
    {"nested": {"password": "p", "list": [{"token": 1}, 2.5]}},
    None,
    "ünïcødé ✓ 😀",
]


def _any(value: Any) -> common_pb2.AnyValue:
    result = common_pb2.AnyValue()
    if value is None:
        return result
    if isinstance(value, bool):
        result.bool_value = value
    elif isinstance(value, int):
        result.int_value = value
    elif isinstance(value, float):
        result.double_value = value
    elif isinstance(value, bytes):
        result.bytes_value = value
    elif isinstance(value, str):
        result.string_value = value
    elif isinstance(value, list):
        result.array_value.SetInParent()
        result.array_value.values.extend([_any(item) for item in value])
    else:
        result.kvlist_value.SetInParent()
        result.kvlist_value.values.extend([_kv(key, item) for key, item in value.items()])
    return result


def _kv(key: str, value: Any) -> common_pb2.KeyValue:
    return common_pb2.KeyValue(key=key, value=_any(value))


def _diverse_request() -> trace_service_pb2.ExportTraceServiceRequest:
    request = trace_service_pb2.ExportTraceServiceRequest()
    block = request.resource_spans.add(schema_url="https://schemas/\x00x")
    block.resource.attributes.extend(
        [_kv("service.name", "svc"), _kv("api_key", "secret"), _kv("n", 3)]
    )
    block.resource.dropped_attributes_count = 2
    scope_block = block.scope_spans.add(schema_url="u")
    scope_block.scope.name = "lib"
    scope_block.scope.version = "1\x00"
    scope_block.scope.attributes.append(_kv("a", [1, "x", 2.5]))
    for i in range(24):
        span = scope_block.spans.add(
            trace_id=bytes([i + 1]) * 16,
            span_id=bytes([i + 1]) * 8,
            parent_span_id=bytes([i + 2]) * 8 if i % 3 else (bytes(8) if i == 3 else b""),
            name=f"op {i}" + ("\x00" if i == 7 else "") + ("y" * 1100 if i == 8 else ""),
            kind=i % 6,
            start_time_unix_nano=NOW - i * 10**9 - 10**6,
            end_time_unix_nano=NOW - i * 10**9 + i * 1237,
            trace_state="a=b" if i % 4 == 0 else "",
            flags=i * 257,
            dropped_attributes_count=i % 2,
            dropped_events_count=2**32 - 1 if i == 9 else 0,
            dropped_links_count=i % 5,
        )
        span.status.code = i % 3
        span.status.message = "failed\x00" if i % 3 == 2 else ""
        span.attributes.extend(_kv(f"k{j}", VALUES[(i + j) % len(VALUES)]) for j in range(i % 9))
        if i % 2:
            span.attributes.extend(
                [_kv("Authorization", "Bearer x"), _kv("db.password", 1), _kv("max_tokens", 5)]
            )
        if i == 10:
            # Over the count limit: the rest is dropped and counted, GenAI keys are kept.
            span.attributes.extend(_kv(f"many{j}", j) for j in range(20))
            span.attributes.extend(
                [_kv("gen_ai.usage.input_tokens", 100), _kv("gen_ai.request.model", "gpt-4o")]
            )
        if i == 11:
            span.attributes.extend(
                [_kv("dup", 1), _kv("dup", 2), _kv("k\x00ey", "v"), _kv("K" * 1100, "long key")]
            )
        if i == 12:
            span.attributes.extend(
                [
                    _kv("gen_ai.operation.name", "chat"),
                    _kv("gen_ai.provider.name", "anthropic"),
                    _kv("gen_ai.request.model", "claude-sonnet-4-5-20250929"),
                    _kv("gen_ai.usage.input_tokens", "12"),
                    _kv("gen_ai.usage.output_tokens", 3.0),
                ]
            )
        if i == 13:
            span.attributes.extend(
                [_kv("gen_ai.tool.name", "read_file"), _kv("gen_ai.operation.name", "execute_tool")]
            )
        if i % 4 == 1:
            event = span.events.add(
                time_unix_nano=span.start_time_unix_nano + 5,
                name="exception",
                dropped_attributes_count=1,
            )
            event.attributes.extend(
                [
                    _kv("exception.type", "ValueError"),
                    _kv("exception.message", f"bad value {i}"),
                    _kv(
                        "exception.stacktrace",
                        'Traceback (most recent call last):\n  File "/app/x.py", line 3, in f\n'
                        "    g()\nValueError: bad",
                    ),
                    _kv("token", "t"),
                ]
            )
            span.events.add(name="log\x00", time_unix_nano=span.start_time_unix_nano)
        if i == 14:
            for j in range(6):
                span.events.add(name=f"e{j}", time_unix_nano=NOW)
                span.links.add(trace_id=b"\x09" * 16, span_id=bytes([j + 1]) * 8, flags=j)
        if i % 5 == 2:
            link = span.links.add(
                trace_id=b"\x01" * 16, span_id=b"\x02" * 8, trace_state="x\x00", flags=3
            )
            link.attributes.extend([_kv("secret", "s"), _kv("n", [1, 2])])
            link.dropped_attributes_count = 7
    return request


def _otlp_json(request: trace_service_pb2.ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP JSON encoding of `request`: protobuf's JSON mapping with ids as hex."""
    document = json_format.MessageToDict(request)

    def hex_ids(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str):
                    node[key] = base64.b64decode(value).hex()
                else:
                    hex_ids(value)
        elif isinstance(node, list):
            for item in node:
                hex_ids(item)

    hex_ids(document)
    return document


def _stored(batch_items: list[Any]) -> dict[str, Any]:
    parts = span_parts(Enricher.from_settings(Settings()), 7, batch_items)
    stored = {part.table: (list(part.columns), part.rows, sorted(part.days)) for part in parts}
    stored["span_rollups"] = rollup_rows(stored["spans"][1])
    return stored


def _both_ways(
    request: trace_service_pb2.ExportTraceServiceRequest, limits: DecodeLimits
) -> tuple[dict[str, Any], dict[str, Any]]:
    from_pb = decode_traces_protobuf(request.SerializeToString(), limits)
    # Through JSON text, as a client would send it.
    from_json = decode_traces_json(json.loads(json.dumps(_otlp_json(request))), limits)
    assert (from_pb.rejected, from_json.rejected) == (0, 0), (from_pb.messages, from_json.messages)
    return _stored(from_pb.items), _stored(from_json.items)


def test_diverse_payload_stores_the_same_both_ways() -> None:
    limits = DecodeLimits(NOW - 7 * DAY, NOW + DAY, max_attributes=16, max_value_chars=256)
    from_pb, from_json = _both_ways(_diverse_request(), limits)
    assert from_pb == from_json
    rows = from_pb["spans"][1]
    assert len(rows) == 24
    assert len(from_pb["error_events"][1]) == 6
    assert from_pb["span_rollups"]
    # Spot checks of what the comparison covers: redaction, limits, special values.
    columns = from_pb["spans"][0]
    attributes = json.loads(rows[1][columns.index("attributes")])
    assert attributes["Authorization"] == "[REDACTED]"
    assert attributes["max_tokens"] == 5
    over = rows[10]
    # 23 attributes: 16 kept, the 2 GenAI ones past the limit too, 5 dropped.
    assert over[columns.index("dropped_attributes_count")] == 5
    assert over[columns.index("gen_ai_input_tokens")] == 100
    stored_values = [
        value for row in rows for value in json.loads(row[columns.index("attributes")]).values()
    ]
    assert "NaN" in stored_values and "Infinity" in stored_values


def test_small_limits_store_the_same_both_ways() -> None:
    limits = DecodeLimits(
        NOW - 7 * DAY,
        NOW + DAY,
        max_attributes=3,
        max_value_chars=8,
        max_value_depth=2,
        max_events=2,
        max_links=1,
    )
    request = _diverse_request()
    # Nesting past max_value_depth rejects the item, so containers stay out of this
    # comparison. Bytes stay in: both ways cut their base64 text at max_value_chars.
    left_out = ("array_value", "kvlist_value")
    for span in request.resource_spans[0].scope_spans[0].spans:
        keep = [kv for kv in span.attributes if kv.value.WhichOneof("value") not in left_out]
        del span.attributes[:]
        span.attributes.extend(keep)
        for link in span.links:
            del link.attributes[:]
    from_pb, from_json = _both_ways(request, limits)
    assert from_pb == from_json
    columns = from_pb["spans"][0]
    dropped_events = [row[columns.index("dropped_events_count")] for row in from_pb["spans"][1]]
    assert max(dropped_events) == 2**31 - 1


def test_specification_example_stores_the_same_both_ways() -> None:
    document = json.loads((EXAMPLES / "trace.json").read_text())
    # protobuf's JSON mapping reads ids as base64; the OTLP encoding writes them as hex.
    converted = json.loads(json.dumps(document))
    for block in converted["resourceSpans"]:
        for scope_block in block["scopeSpans"]:
            for span in scope_block["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    request = json_format.ParseDict(converted, trace_service_pb2.ExportTraceServiceRequest())
    limits = DecodeLimits(0, 2**63 - 1)
    from_pb = decode_traces_protobuf(request.SerializeToString(), limits)
    from_json = decode_traces_json(document, limits)
    assert from_pb.rejected == from_json.rejected == 0
    assert len(from_pb.items) == len(document["resourceSpans"][0]["scopeSpans"][0]["spans"])
    assert _stored(from_pb.items) == _stored(from_json.items)
