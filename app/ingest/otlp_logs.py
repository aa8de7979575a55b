"""OTLP logs: an `ExportLogsServiceRequest` (protobuf bytes or parsed JSON) → log records.

Log records carry no id of their own, so rejection messages name a record by its position
in the request ("log record 3"), counted from 0 across all resource and scope blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2

from app.domain.logs import SEVERITY_MAX, LogRecord
from app.domain.records import DecodedBatch, Resource, Scope
from app.ingest.offload import Steps, drive
from app.ingest.otlp_common import (
    SPAN_ID_BYTES,
    TRACE_ID_BYTES,
    DecodeLimits,
    InvalidItem,
    MalformedPayload,
    any_value_json,
    any_value_pb,
    as_dict,
    as_list,
    attributes_json,
    attributes_pb,
    clean_text,
    enum_json,
    field_json,
    id_json,
    id_pb,
    int_json,
    resource_json,
    resource_pb,
    scope_json,
    scope_pb,
)

# JSON senders may spell severities by enum name ("SEVERITY_NUMBER_WARN").
SEVERITY_NUMBERS: dict[str, int] = dict(logs_pb2.SeverityNumber.items())
TEXT_LIMIT = 1024
# A body is the log line itself (messages, stack traces, prompts), so its strings get a
# larger bound than attribute values; still a bound, so one record cannot fill a request.
BODY_VALUE_CHARS = 256 * 1024
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
# dropped_attributes_count is uint32 on the wire but an int4 column.
INT32_MAX = 2**31 - 1


def decode_logs_protobuf(body: bytes, limits: DecodeLimits) -> DecodedBatch:
    return drive(decode_logs_protobuf_steps(body, limits))


# Log records decoded between two pauses of `decode_logs_protobuf_steps`.
RECORDS_PER_STEP = 32


def decode_logs_protobuf_steps(body: bytes, limits: DecodeLimits) -> Steps[DecodedBatch]:
    """`decode_logs_protobuf` as sliced steps (see `app/ingest/offload.py`)."""
    try:
        request = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
    except DecodeError as error:
        raise MalformedPayload(f"body is not a valid ExportLogsServiceRequest: {error}") from None
    yield
    body_limits = _body_limits(limits)
    batch = DecodedBatch(items=[])
    index = 0
    for resource_logs in request.resource_logs:
        try:
            resource: Resource | None = resource_pb(
                resource_logs.resource, resource_logs.schema_url, limits
            )
        except InvalidItem as problem:
            resource, problem_where = None, f"resource: {problem}"
        for scope_logs in resource_logs.scope_logs:
            scope: Scope | None = None
            if resource is not None:
                try:
                    scope = scope_pb(scope_logs.scope, scope_logs.schema_url, limits)
                except InvalidItem as problem:
                    problem_where = f"scope: {problem}"
            for record in scope_logs.log_records:
                try:
                    if resource is None or scope is None:
                        # A bad resource or scope takes its records with it, each counted.
                        raise InvalidItem(problem_where)
                    batch.items.append(_record_pb(record, resource, scope, limits, body_limits))
                except InvalidItem as problem:
                    batch.reject(f"log record {index}: {problem}")
                index += 1
                if not index % RECORDS_PER_STEP:
                    yield
    return batch


def _record_pb(
    record: Any, resource: Resource, scope: Scope, limits: DecodeLimits, body_limits: DecodeLimits
) -> LogRecord:
    time_unix_nano = _effective_time(record.time_unix_nano, record.observed_time_unix_nano, limits)
    severity = _severity(record.severity_number)
    trace_id = id_pb(record.trace_id, "traceId", TRACE_ID_BYTES, required=False)
    span_id = id_pb(record.span_id, "spanId", SPAN_ID_BYTES, required=False)
    attributes, dropped = attributes_pb(record.attributes, limits)
    return LogRecord(
        time_unix_nano=time_unix_nano,
        observed_time_unix_nano=record.observed_time_unix_nano,
        severity_number=severity,
        severity_text=clean_text(record.severity_text, TEXT_LIMIT),
        # An unset body (no oneof chosen) stays None, stored as SQL NULL, not as "".
        body=_body(any_value_pb, record.body, body_limits) if record.HasField("body") else None,
        attributes=attributes,
        resource=resource,
        scope=scope,
        trace_id=trace_id,
        span_id=span_id,
        flags=record.flags,
        event_name=clean_text(record.event_name, TEXT_LIMIT),
        dropped_attributes_count=min(record.dropped_attributes_count + dropped, INT32_MAX),
    )


def decode_logs_json(document: Any, limits: DecodeLimits) -> DecodedBatch:
    """`document` is the request body already parsed from JSON."""
    return drive(decode_logs_json_steps(document, limits))


def decode_logs_json_steps(document: Any, limits: DecodeLimits) -> Steps[DecodedBatch]:
    """`decode_logs_json` as sliced steps: it yields every `RECORDS_PER_STEP` records."""
    root = as_dict(document, "request body")
    body_limits = _body_limits(limits)
    batch = DecodedBatch(items=[])
    index = 0
    for resource_logs in as_list(field_json(root, "resourceLogs", "resource_logs"), "resourceLogs"):
        resource_logs = as_dict(resource_logs, "resourceLogs[]")
        scopes = as_list(field_json(resource_logs, "scopeLogs", "scope_logs"), "scopeLogs")
        try:
            resource: Resource | None = resource_json(
                resource_logs.get("resource"),
                field_json(resource_logs, "schemaUrl", "schema_url", ""),
                limits,
            )
            problem_where = ""
        except InvalidItem as problem:
            resource, problem_where = None, f"resource: {problem}"
        for scope_logs in scopes:
            scope_logs = as_dict(scope_logs, "scopeLogs[]")
            records = as_list(field_json(scope_logs, "logRecords", "log_records"), "logRecords")
            scope: Scope | None = None
            if resource is not None:
                try:
                    scope = scope_json(
                        scope_logs.get("scope"),
                        field_json(scope_logs, "schemaUrl", "schema_url", ""),
                        limits,
                    )
                except InvalidItem as problem:
                    problem_where = f"scope: {problem}"
            for record in records:
                if resource is None or scope is None:
                    # A bad resource or scope takes its records with it, each one counted.
                    batch.reject(f"log record {index}: {problem_where}")
                else:
                    try:
                        batch.items.append(
                            _record_json(record, resource, scope, limits, body_limits)
                        )
                    except (InvalidItem, MalformedPayload) as problem:
                        batch.reject(f"log record {index}: {problem}")
                index += 1
                if not index % RECORDS_PER_STEP:
                    yield
    return batch


def _record_json(
    record: Any, resource: Resource, scope: Scope, limits: DecodeLimits, body_limits: DecodeLimits
) -> LogRecord:
    if not isinstance(record, dict):
        raise InvalidItem("a log record must be a JSON object")
    observed = int_json(
        field_json(record, "observedTimeUnixNano", "observed_time_unix_nano"),
        "observedTimeUnixNano",
    )
    time_unix_nano = _effective_time(
        int_json(field_json(record, "timeUnixNano", "time_unix_nano"), "timeUnixNano"),
        observed,
        limits,
    )
    severity = _severity(
        enum_json(
            field_json(record, "severityNumber", "severity_number"),
            "severityNumber",
            SEVERITY_NUMBERS,
        )
    )
    trace_id = id_json(
        field_json(record, "traceId", "trace_id"), "traceId", TRACE_ID_BYTES, required=False
    )
    span_id = id_json(
        field_json(record, "spanId", "span_id"), "spanId", SPAN_ID_BYTES, required=False
    )
    flags = int_json(record.get("flags"), "flags")
    if not 0 <= flags <= UINT32_MAX:
        raise InvalidItem(f"flags {flags} is not a 32-bit unsigned integer")
    attributes, dropped = attributes_json(record.get("attributes"), limits)
    declared_dropped = int_json(
        field_json(record, "droppedAttributesCount", "dropped_attributes_count"),
        "droppedAttributesCount",
    )
    body = record.get("body")
    return LogRecord(
        time_unix_nano=time_unix_nano,
        observed_time_unix_nano=observed,
        severity_number=severity,
        severity_text=clean_text(
            str(field_json(record, "severityText", "severity_text", "")), TEXT_LIMIT
        ),
        body=None if body is None else _body(any_value_json, body, body_limits),
        attributes=attributes,
        resource=resource,
        scope=scope,
        trace_id=trace_id,
        span_id=span_id,
        flags=flags,
        event_name=clean_text(str(field_json(record, "eventName", "event_name", "")), TEXT_LIMIT),
        dropped_attributes_count=min(max(declared_dropped, 0) + dropped, INT32_MAX),
    )


def _body(decode: Callable[[Any, DecodeLimits], Any], body: Any, limits: DecodeLimits) -> Any:
    try:
        return decode(body, limits)
    except InvalidItem as problem:
        raise InvalidItem(f"body: {problem}") from None


def _effective_time(time_unix_nano: int, observed_unix_nano: int, limits: DecodeLimits) -> int:
    # OTLP data model: Timestamp is optional and ObservedTimestamp stands in for it, so a
    # record is only unplaceable (no partition to go to) when both are missing.
    if not 0 <= observed_unix_nano <= UINT64_MAX:
        raise InvalidItem(f"observedTimeUnixNano {observed_unix_nano} is out of range")
    if time_unix_nano:
        limits.check_time(time_unix_nano, "timeUnixNano")
        return time_unix_nano
    if observed_unix_nano:
        limits.check_time(observed_unix_nano, "observedTimeUnixNano (timeUnixNano is 0)")
        return observed_unix_nano
    raise InvalidItem("timeUnixNano and observedTimeUnixNano are both missing; set at least one")


def _severity(number: int) -> int:
    # Protobuf enums are open, so any int32 can arrive; only 0..24 has a meaning.
    if not 0 <= number <= SEVERITY_MAX:
        raise InvalidItem(f"severityNumber {number} is outside 0..{SEVERITY_MAX}")
    return number


def _body_limits(limits: DecodeLimits) -> DecodeLimits:
    if limits.max_value_chars >= BODY_VALUE_CHARS:
        return limits
    return replace(limits, max_value_chars=BODY_VALUE_CHARS)
