"""OTLP traces: an `ExportTraceServiceRequest` (protobuf bytes or parsed JSON) → span records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from app.domain.records import DecodedBatch, Resource, Scope, SpanRecord
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
    attributes_pb,
    clean_text,
    count_json,
    enum_json,
    enum_pb,
    field_json,
    id_json,
    id_pb,
    int_json,
    resource_json,
    resource_pb,
    scope_json,
    scope_pb,
    storable_count,
)

SPAN_KINDS = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
STATUS_CODES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
NAME_LIMIT = 1024


def decode_traces_protobuf(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    return drive(decode_traces_protobuf_steps(body, limits))


# Spans decoded between two pauses of `decode_traces_protobuf_steps` (about 0.4 ms).
SPANS_PER_STEP = 32


def decode_traces_protobuf_steps(body: bytes, limits: DecodeLimits) -> Steps[DecodedBatch]:
    """`decode_traces_protobuf` as sliced steps (see `app/ingest/offload.py`): it yields
    every `SPANS_PER_STEP` spans. Parsing the message is one step (15 ms for 6.6 MB)."""
    try:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
    except DecodeError as error:
        raise MalformedPayload(f"body is not a valid ExportTraceServiceRequest: {error}") from None
    yield
    batch = DecodedBatch(items=[])
    count = 0
    for resource_spans in request.resource_spans:
        try:
            resource = resource_pb(resource_spans.resource, resource_spans.schema_url, limits)
        except InvalidItem as problem:
            for scope_spans in resource_spans.scope_spans:
                batch.reject_many(len(scope_spans.spans), f"resource: {problem}")
            continue
        for scope_spans in resource_spans.scope_spans:
            try:
                scope = scope_pb(scope_spans.scope, scope_spans.schema_url, limits)
            except InvalidItem as problem:
                batch.reject_many(len(scope_spans.spans), f"scope: {problem}")
                continue
            for span in scope_spans.spans:
                try:
                    batch.items.append(_span_pb(span, resource, scope, limits))
                except (InvalidItem, MalformedPayload) as problem:
                    batch.reject(_describe(span.name, span.span_id.hex(), problem))
                count += 1
                if not count % SPANS_PER_STEP:
                    yield
    return batch


_KIND_NUMBERS = frozenset(SPAN_KINDS.values())
_STATUS_NUMBERS = frozenset(STATUS_CODES.values())
_ZERO_TRACE_ID = bytes(TRACE_ID_BYTES)
_ZERO_SPAN_ID = bytes(SPAN_ID_BYTES)
_INT32_MAX = 2**31 - 1
# `_span_pb` builds records positionally (a third of the cost of keywords): the fields it
# passes, in order. Checked at import, so a field added to SpanRecord cannot shift them.
_POSITIONAL = (
    "trace_id", "span_id", "parent_span_id", "name", "kind", "start_time_unix_nano",
    "end_time_unix_nano", "attributes", "resource", "scope", "status_code", "status_message",
    "trace_state", "flags", "events", "links", "dropped_attributes_count",
    "dropped_events_count", "dropped_links_count",
)  # fmt: skip
if SpanRecord.__match_args__[: len(_POSITIONAL)] != _POSITIONAL:
    raise ImportError("SpanRecord's fields moved; update _span_pb's positional arguments")


def _span_pb(span: Any, resource: Resource, scope: Scope, limits: DecodeLimits) -> SpanRecord:
    # Once per span: each protobuf field access and each call costs about as much as the
    # check it serves, so valid values take inline fast paths and anything unusual falls
    # back to the general checks (which raise the same errors as ever).
    trace_id = span.trace_id
    if len(trace_id) != TRACE_ID_BYTES or trace_id == _ZERO_TRACE_ID:
        trace_id = id_pb(trace_id, "traceId", TRACE_ID_BYTES, required=True)
    span_id = span.span_id
    if len(span_id) != SPAN_ID_BYTES or span_id == _ZERO_SPAN_ID:
        span_id = id_pb(span_id, "spanId", SPAN_ID_BYTES, required=True)
    parent = span.parent_span_id
    if len(parent) != SPAN_ID_BYTES or parent == _ZERO_SPAN_ID:
        parent = id_pb(parent, "parentSpanId", SPAN_ID_BYTES, required=False)
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if not (0 < start and limits.oldest_unix_nano <= start <= end <= limits.newest_unix_nano):
        _check_times(start, end, limits)
    attributes, dropped = attributes_pb(span.attributes, limits)
    # Most spans have no events and no links: they share one empty tuple, which unlike a
    # list is not an object the garbage collector tracks.
    events: Sequence[dict[str, Any]] = ()
    extra_events = 0
    span_events = span.events
    if span_events:
        events = kept_events = []
        # Past the limits, events and links are dropped and counted, as the SDKs do.
        extra_events = max(len(span_events) - limits.max_events, 0)
        for event in span_events[: limits.max_events]:
            event_attributes, event_dropped = attributes_pb(event.attributes, limits)
            kept_events.append(
                {
                    "time_unix_nano": event.time_unix_nano,
                    "name": clean_text(event.name, NAME_LIMIT),
                    "attributes": event_attributes,
                    "dropped_attributes_count": storable_count(
                        event.dropped_attributes_count + event_dropped
                    ),
                }
            )
    links: Sequence[dict[str, Any]] = ()
    extra_links = 0
    span_links = span.links
    if span_links:
        links = kept_links = []
        extra_links = max(len(span_links) - limits.max_links, 0)
        for link in span_links[: limits.max_links]:
            link_attributes, link_dropped = attributes_pb(link.attributes, limits)
            kept_links.append(
                {
                    "trace_id": link.trace_id.hex(),
                    "span_id": link.span_id.hex(),
                    "trace_state": clean_text(link.trace_state, limits.max_value_chars),
                    "attributes": link_attributes,
                    "dropped_attributes_count": storable_count(
                        link.dropped_attributes_count + link_dropped
                    ),
                    "flags": link.flags,
                }
            )
    kind = span.kind
    if kind not in _KIND_NUMBERS:
        enum_pb(kind, "kind", SPAN_KINDS)
    # Most spans leave their status unset; reading it would build its message object.
    status_code, status_message = 0, ""
    if span.HasField("status"):
        status = span.status
        status_code, status_message = status.code, status.message
        if status_code not in _STATUS_NUMBERS:
            enum_pb(status_code, "status.code", STATUS_CODES)
    name = span.name
    if "\x00" in name or len(name) > NAME_LIMIT:
        name = clean_text(name, NAME_LIMIT)
    max_chars = limits.max_value_chars
    if status_message and ("\x00" in status_message or len(status_message) > max_chars):
        status_message = clean_text(status_message, max_chars)
    trace_state = span.trace_state
    if trace_state and ("\x00" in trace_state or len(trace_state) > max_chars):
        trace_state = clean_text(trace_state, max_chars)
    dropped_attributes = span.dropped_attributes_count + dropped
    dropped_events = span.dropped_events_count + extra_events
    dropped_links = span.dropped_links_count + extra_links
    return SpanRecord(
        trace_id,
        span_id,
        parent,
        name,
        kind,
        start,
        end,
        attributes,
        resource,
        scope,
        status_code,
        status_message,
        trace_state,
        span.flags,
        events,
        links,
        dropped_attributes if dropped_attributes <= _INT32_MAX else _INT32_MAX,
        dropped_events if dropped_events <= _INT32_MAX else _INT32_MAX,
        dropped_links if dropped_links <= _INT32_MAX else _INT32_MAX,
    )


def decode_traces_json(document: Any, limits: DecodeLimits) -> DecodedBatch:
    """`document` is the request body already parsed from JSON."""
    return drive(decode_traces_json_steps(document, limits))


def decode_traces_json_steps(document: Any, limits: DecodeLimits) -> Steps[DecodedBatch]:
    """`decode_traces_json` as sliced steps: it yields every `SPANS_PER_STEP` spans."""
    root = as_dict(document, "request body")
    batch = DecodedBatch(items=[])
    count = 0
    for resource_spans in as_list(
        field_json(root, "resourceSpans", "resource_spans"), "resourceSpans"
    ):
        resource_spans = as_dict(resource_spans, "resourceSpans[]")
        scopes = as_list(field_json(resource_spans, "scopeSpans", "scope_spans"), "scopeSpans")
        try:
            resource = resource_json(
                resource_spans.get("resource"),
                field_json(resource_spans, "schemaUrl", "schema_url", ""),
                limits,
            )
        except (InvalidItem, MalformedPayload) as problem:
            for scope_spans in scopes:
                for _ in as_list(as_dict(scope_spans, "scopeSpans[]").get("spans"), "spans"):
                    batch.reject(f"resource: {problem}")
            continue
        for scope_spans in scopes:
            scope_spans = as_dict(scope_spans, "scopeSpans[]")
            spans = as_list(scope_spans.get("spans"), "spans")
            try:
                scope = scope_json(
                    scope_spans.get("scope"),
                    field_json(scope_spans, "schemaUrl", "schema_url", ""),
                    limits,
                )
            except (InvalidItem, MalformedPayload) as problem:
                for _ in spans:
                    batch.reject(f"scope: {problem}")
                continue
            for span in spans:
                try:
                    batch.items.append(_span_json(span, resource, scope, limits))
                except (InvalidItem, MalformedPayload) as problem:
                    name = span.get("name") if isinstance(span, dict) else None
                    span_id = (
                        field_json(span, "spanId", "span_id") if isinstance(span, dict) else None
                    )
                    batch.reject(_describe(name, span_id, problem))
                count += 1
                if not count % SPANS_PER_STEP:
                    yield
    return batch


def _span_json(span: Any, resource: Resource, scope: Scope, limits: DecodeLimits) -> SpanRecord:
    if not isinstance(span, dict):
        raise InvalidItem("a span must be a JSON object")
    trace_id = id_json(
        field_json(span, "traceId", "trace_id"), "traceId", TRACE_ID_BYTES, required=True
    )
    span_id = id_json(field_json(span, "spanId", "span_id"), "spanId", SPAN_ID_BYTES, required=True)
    parent = id_json(
        field_json(span, "parentSpanId", "parent_span_id"),
        "parentSpanId",
        SPAN_ID_BYTES,
        required=False,
    )
    start = int_json(
        field_json(span, "startTimeUnixNano", "start_time_unix_nano"),
        "startTimeUnixNano",
        minimum=0,
    )
    end = int_json(
        field_json(span, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano", minimum=0
    )
    _check_times(start, end, limits)
    attributes, dropped = attributes_json(span.get("attributes"), limits)
    events = []
    all_events = as_list(span.get("events"), "events")
    all_links = as_list(span.get("links"), "links")
    extra_events = max(len(all_events) - limits.max_events, 0)
    extra_links = max(len(all_links) - limits.max_links, 0)
    for event in all_events[: limits.max_events]:
        event = _object(event, "event")
        event_attributes, event_dropped = attributes_json(event.get("attributes"), limits)
        events.append(
            {
                "time_unix_nano": int_json(
                    field_json(event, "timeUnixNano", "time_unix_nano"),
                    "event timeUnixNano",
                    minimum=0,
                ),
                "name": clean_text(str(event.get("name") or ""), NAME_LIMIT),
                "attributes": event_attributes,
                "dropped_attributes_count": storable_count(
                    event_dropped
                    + count_json(
                        field_json(event, "droppedAttributesCount", "dropped_attributes_count"),
                        "droppedAttributesCount",
                    )
                ),
            }
        )
    links = []
    for link in all_links[: limits.max_links]:
        link = _object(link, "link")
        link_attributes, link_dropped = attributes_json(link.get("attributes"), limits)
        link_trace = id_json(
            field_json(link, "traceId", "trace_id"), "link traceId", TRACE_ID_BYTES, required=True
        )
        link_span = id_json(
            field_json(link, "spanId", "span_id"), "link spanId", SPAN_ID_BYTES, required=True
        )
        links.append(
            {
                "trace_id": link_trace.hex(),  # type: ignore[union-attr]
                "span_id": link_span.hex(),  # type: ignore[union-attr]
                "trace_state": clean_text(
                    str(field_json(link, "traceState", "trace_state", "")),
                    limits.max_value_chars,
                ),
                "attributes": link_attributes,
                "dropped_attributes_count": storable_count(
                    link_dropped
                    + count_json(
                        field_json(link, "droppedAttributesCount", "dropped_attributes_count"),
                        "droppedAttributesCount",
                    )
                ),
                "flags": _flags_json(link.get("flags"), "link flags"),
            }
        )
    status = _object(span.get("status"), "status")
    return SpanRecord(
        trace_id=trace_id,  # type: ignore[arg-type]
        span_id=span_id,  # type: ignore[arg-type]
        parent_span_id=parent,
        name=clean_text(str(span.get("name") or ""), NAME_LIMIT),
        kind=enum_json(span.get("kind"), "kind", SPAN_KINDS),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=attributes,
        resource=resource,
        scope=scope,
        status_code=enum_json(status.get("code"), "status.code", STATUS_CODES),
        status_message=clean_text(str(status.get("message") or ""), limits.max_value_chars),
        trace_state=clean_text(
            str(field_json(span, "traceState", "trace_state", "")), limits.max_value_chars
        ),
        flags=_flags_json(span.get("flags"), "flags"),
        events=events or (),
        links=links or (),
        dropped_attributes_count=storable_count(
            dropped
            + count_json(
                field_json(span, "droppedAttributesCount", "dropped_attributes_count"),
                "droppedAttributesCount",
            )
        ),
        dropped_events_count=storable_count(
            extra_events
            + count_json(
                field_json(span, "droppedEventsCount", "dropped_events_count"),
                "droppedEventsCount",
            )
        ),
        dropped_links_count=storable_count(
            extra_links
            + count_json(
                field_json(span, "droppedLinksCount", "dropped_links_count"), "droppedLinksCount"
            )
        ),
    )


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidItem(f"{what} must be a JSON object")
    return value


def _flags_json(value: Any, field: str) -> int:
    # fixed32 in the protobuf schema.
    return int_json(value, field, minimum=0, maximum=2**32 - 1)


def _check_times(start: int, end: int, limits: DecodeLimits) -> None:
    if start <= 0:
        raise InvalidItem("startTimeUnixNano is missing")
    if end < start:
        raise InvalidItem("endTimeUnixNano is before startTimeUnixNano")
    limits.check_time(start, "startTimeUnixNano")
    # The end is bounded too: a far-future end would overflow the stored duration and make
    # the database refuse the whole batch rather than this one span.
    limits.check_time(end, "endTimeUnixNano")


def _describe(name: Any, span_id: Any, problem: Exception) -> str:
    label = f"span {name!r:.60}" if name else "span"
    if isinstance(span_id, str) and span_id:
        label += f" ({span_id:.32})"
    return f"{label}: {problem}"
