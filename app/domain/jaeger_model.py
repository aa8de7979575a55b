"""Traces in the Jaeger UI's JSON model, and the envelope every Jaeger API answer comes in.

The input is a trace as `app/query/traces.py:get_trace` returns it; the output is what
Jaeger's query service answers for the same OTLP data. Jaeger v2 gets there in three steps,
and this module follows each:

1. the OTLP → Jaeger translator (open-telemetry/opentelemetry-collector-contrib
   `pkg/translator/jaeger/traces_to_jaegerproto.go`, which Jaeger's
   `internal/storage/v2/v1adapter/translator.go` calls);
2. the query service's adjusters (jaegertracing/jaeger
   `cmd/jaeger/internal/extension/jaegerquery/internal/adjuster/`), of which two change
   what we return: attributes sorted by key (`sort.go`), invalid links removed with a
   warning (`spanlinks.go`);
3. the UI model (jaegertracing/jaeger `internal/uimodel/model.go` and
   `internal/uimodel/converter/v1/json/from_domain.go`).

The mapping:

- span tags, in the translator's order: `otel.scope.name`, `otel.scope.version` (the
  scope's attributes are not carried, as in the translator); the span's attributes sorted
  by key, with the GenAI columns this collector derives added under their OpenTelemetry
  names where the span lacks that key (see `GENAI_COLUMN_TAGS`); `span.kind`;
  `otel.status_code` (`OK` / `ERROR`); `error=true` for an error status;
  `otel.status_description`; `w3c.tracestate`;
- typed values: string, bool, int64 (outside ±(2^53-1) written as a string, as Jaeger does
  for JavaScript), float64; arrays and maps as their compact JSON text (type string);
  bytes are stored as base64 text, so they come back as strings;
- the parent → a `CHILD_OF` reference, first; each link → `FOLLOWS_FROM`, or `CHILD_OF`
  when the link says `opentracing.ref_type=child_of`; a link to the parent only sets the
  first reference's type; a link without ids is dropped with a span warning;
- events → logs: the name as field `event` (unless an attribute already has that key),
  then the attributes sorted by key. Logs stay in time order: Jaeger's adjuster sorts them
  by name, which breaks the timeline the UIs draw from them;
- resource → process: `serviceName` and the other resource attributes as tags, sorted by
  key; equal processes share one id (`p1`, `p2`, ... in order of first use);
- times in microseconds since the epoch, durations in microseconds (truncated);
- ids as Jaeger prints them: 16 hex digits for a trace id whose high half is zero.

A span of unspecified kind is reported with `span.kind=internal`, as this collector's own
API reports it (the translator would leave the tag out).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from app.domain.jaeger_params import format_trace_id, to_micros

_JS_MAX_SAFE_INTEGER = 2**53 - 1
REF_TYPE_KEY = "opentracing.ref_type"
INVALID_LINK_WARNING = "Invalid span link removed"
# The GenAI columns (app/domain/genai.py) as span tags: (column in get_trace's `gen_ai`,
# tag key, keys whose presence on the span means the column adds nothing).
GENAI_COLUMN_TAGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("provider", "gen_ai.provider.name", ("gen_ai.provider.name",)),
    ("model", "gen_ai.response.model", ("gen_ai.response.model", "gen_ai.request.model")),
    ("operation", "gen_ai.operation.name", ("gen_ai.operation.name",)),
    ("input_tokens", "gen_ai.usage.input_tokens", ("gen_ai.usage.input_tokens",)),
    ("output_tokens", "gen_ai.usage.output_tokens", ("gen_ai.usage.output_tokens",)),
    (
        "cache_read_input_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        ("gen_ai.usage.cache_read.input_tokens",),
    ),
    ("tool_name", "gen_ai.tool.name", ("gen_ai.tool.name",)),
    ("cost_usd", "gen_ai.usage.cost", ("gen_ai.usage.cost",)),
)
_STATUS_TAGS = {"ok": "OK", "error": "ERROR"}


def envelope(data: Any, *, total: int = 0, errors: list[dict[str, Any]] | None = None) -> dict:
    """Jaeger's `structuredResponse`. Jaeger sets `total` only for services and operations;
    `limit` and `offset` are always 0, and `errors` is null when there are none."""
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def error_envelope(status: int, message: str) -> dict[str, Any]:
    """The body of a failed Jaeger API call (its `handleError`)."""
    return envelope(None, errors=[{"code": status, "msg": message}])


def key_value(key: str, value: Any) -> dict[str, Any]:
    """One Jaeger `KeyValue` from a stored attribute value."""
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        safe = -_JS_MAX_SAFE_INTEGER <= value <= _JS_MAX_SAFE_INTEGER
        return {"key": key, "type": "int64", "value": value if safe else str(value)}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    if value is None:
        return {"key": key, "type": "string", "value": ""}
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return {"key": key, "type": "string", "value": text}


def sorted_tags(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [key_value(key, attributes[key]) for key in sorted(attributes)]


def _micros(iso_time: str) -> int:
    return to_micros(datetime.fromisoformat(iso_time.replace("Z", "+00:00")))


def _span_attributes(span: dict[str, Any]) -> dict[str, Any]:
    attributes = dict(span.get("attributes") or {})
    genai = span.get("gen_ai") or {}
    for column, key, present in GENAI_COLUMN_TAGS:
        value = genai.get(column)
        if value is not None and not any(name in attributes for name in present):
            attributes[key] = value
    return attributes


def span_tags(span: dict[str, Any]) -> list[dict[str, Any]]:
    scope = span.get("scope") or {}
    tags = [
        key_value(key, scope[field])
        for field, key in (("name", "otel.scope.name"), ("version", "otel.scope.version"))
        if scope.get(field)
    ]
    tags += sorted_tags(_span_attributes(span))
    if span.get("kind") and span["kind"] != "unspecified":
        tags.append(key_value("span.kind", span["kind"]))
    status = span.get("status")
    if status in _STATUS_TAGS:
        tags.append(key_value("otel.status_code", _STATUS_TAGS[status]))
    if status == "error":
        tags.append(key_value("error", True))
    if span.get("status_message"):
        tags.append(key_value("otel.status_description", span["status_message"]))
    if span.get("trace_state"):
        tags.append(key_value("w3c.tracestate", span["trace_state"]))
    return tags


def _hex_id(text: Any, size: int) -> bytes | None:
    try:
        raw = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        return None
    return raw if len(raw) == size and any(raw) else None


def references(span: dict[str, Any], trace_id: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """The span's references and the warnings converting them produced."""
    refs: list[dict[str, Any]] = []
    warnings: list[str] = []
    parent = span.get("parent_span_id")
    if parent:
        refs.append(_reference("CHILD_OF", trace_id, parent))
    for link in span.get("links") or []:
        link_trace, link_span = _hex_id(link.get("trace_id"), 16), _hex_id(link.get("span_id"), 8)
        if link_trace is None or link_span is None:
            warnings.append(INVALID_LINK_WARNING)
            continue
        ref_type = "FOLLOWS_FROM"
        if (link.get("attributes") or {}).get(REF_TYPE_KEY) == "child_of":
            ref_type = "CHILD_OF"
        if parent and link_trace == trace_id and link_span.hex() == parent:
            refs[0]["refType"] = ref_type
            continue
        refs.append(_reference(ref_type, link_trace, link_span.hex()))
    return refs, warnings


def _reference(ref_type: str, trace_id: bytes, span_id: str) -> dict[str, Any]:
    return {"refType": ref_type, "traceID": format_trace_id(trace_id), "spanID": span_id}


def span_logs(span: dict[str, Any]) -> list[dict[str, Any]]:
    logs = []
    for event in sorted(span.get("events") or [], key=lambda item: item["time_unix_nano"]):
        attributes = event.get("attributes") or {}
        fields = []
        if event.get("name") and "event" not in attributes:
            fields.append(key_value("event", event["name"]))
        fields += sorted_tags(attributes)
        logs.append({"timestamp": event["time_unix_nano"] // 1000, "fields": fields})
    return logs


def _process(span: dict[str, Any]) -> dict[str, Any]:
    resource = {
        key: value for key, value in (span.get("resource") or {}).items() if key != "service.name"
    }
    return {"serviceName": span["service"], "tags": sorted_tags(resource)}


def ui_trace(trace: dict[str, Any]) -> dict[str, Any]:
    """One trace of `get_trace` in the Jaeger UI model (the module doc has the mapping)."""
    trace_id = bytes.fromhex(trace["trace_id"])
    trace_text = format_trace_id(trace_id)
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[str, str] = {}
    spans = []
    for span in trace["spans"]:
        process = _process(span)
        identity = json.dumps(process, sort_keys=True)
        process_id = process_ids.get(identity)
        if process_id is None:
            process_id = process_ids[identity] = f"p{len(process_ids) + 1}"
            processes[process_id] = process
        refs, warnings = references(span, trace_id)
        duration_ns = round(span["duration_ms"] * 1_000_000)
        spans.append(
            {
                "traceID": trace_text,
                "spanID": span["span_id"],
                "operationName": span["name"],
                "references": refs,
                "startTime": _micros(span["start_time"]),
                "duration": max(duration_ns, 0) // 1000,
                "tags": span_tags(span),
                "logs": span_logs(span),
                "processID": process_id,
                "warnings": warnings or None,
            }
        )
    return {"traceID": trace_text, "spans": spans, "processes": processes, "warnings": None}


def operations(found: list[tuple[str, str]]) -> list[dict[str, str]]:
    """`(name, span kind)` pairs as Jaeger's `Operation`; an unspecified kind is ""."""
    return [
        {"name": name, "spanKind": "" if kind == "unspecified" else kind} for name, kind in found
    ]


def dependency_links(found: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """`(parent service, child service, calls)` as Jaeger's `DependencyLink`."""
    return [
        {"parent": parent, "child": child, "callCount": calls} for parent, child, calls in found
    ]
