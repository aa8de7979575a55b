"""OTLP logs decoding (protobuf and JSON), levels, search text and rows; no database."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from support import load_example, shift_to_now

from app.db.tables import LOG_COLUMNS
from app.domain.logs import (
    SEARCH_TEXT_CHARS,
    LogRecord,
    level_name,
    search_text,
    severity_floor,
)
from app.domain.pricing import PriceTable
from app.domain.records import Resource, Scope
from app.domain.redaction import DEFAULT_REDACT_KEYS, REDACTED, Redactor
from app.ingest.enrich import Enricher
from app.ingest.log_rows import log_rows
from app.ingest.otlp_common import NANOS_PER_SECOND, DecodeLimits, MalformedPayload
from app.ingest.otlp_logs import decode_logs_json, decode_logs_protobuf
from app.ingest.store_logs import store_logs
from app.ingest.writer import TableRows

DAY_NS = 86400 * NANOS_PER_SECOND
NOW = time.time_ns()
TRACE_HEX = "5b8efff798038103d269b633813fc60c"
SPAN_HEX = "eee19b7ec3c1b174"


@pytest.fixture
def limits() -> DecodeLimits:
    return DecodeLimits(
        oldest_unix_nano=NOW - 30 * DAY_NS,
        newest_unix_nano=NOW + DAY_NS,
        retention_label="30d retention",
    )


def request(*records: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": resource
                or {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": list(records)}],
            }
        ]
    }


def record(**fields: Any) -> dict[str, Any]:
    return {"timeUnixNano": str(NOW), **fields}


def to_protobuf(document: dict[str, Any]) -> bytes:
    """OTLP JSON → protobuf bytes; ParseDict reads ids as base64, so hex ids are converted."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64encode(bytes.fromhex(value)).decode()
                if key in ("traceId", "spanId") and value
                else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    message = json_format.ParseDict(fix(document), logs_service_pb2.ExportLogsServiceRequest())
    return message.SerializeToString()


# ---------------------------------------------------------------- the spec examples


def test_logs_example(limits: DecodeLimits) -> None:
    batch = decode_logs_json(shift_to_now(load_example("logs.json"), NOW), limits)
    assert batch.rejected == 0, batch.messages
    [log] = batch.items
    assert log.time_unix_nano == NOW
    assert log.observed_time_unix_nano == NOW
    assert (log.severity_number, log.severity_text, log.level) == (10, "Information", "info")
    assert log.trace_id == bytes.fromhex(TRACE_HEX)
    assert log.span_id == bytes.fromhex(SPAN_HEX)
    assert log.body == "Example log record"
    assert log.attributes == {
        "string.attribute": "some string",
        "boolean.attribute": True,
        "int.attribute": 10,
        "double.attribute": 637.704,
        "array.attribute": ["many", "values"],
        "map.attribute": {"some.map.key": "some value"},
    }
    assert log.service_name == "my.service"
    assert log.scope == Scope("my.library", "1.0.0", {"my.scope.attribute": "some scope attribute"})
    assert (log.flags, log.event_name, log.dropped_attributes_count) == (0, "", 0)


def test_events_example(limits: DecodeLimits) -> None:
    batch = decode_logs_json(shift_to_now(load_example("events.json"), NOW), limits)
    [event] = batch.items
    assert event.event_name == "browser.page_view"
    assert event.trace_id is None and event.span_id is None
    assert event.body == {
        "type": 0,
        "url": "https://www.guidgenerator.com/online-guid-generator.aspx",
        "referrer": "https://wwww.google.com",
        "title": "Free Online GUID Generator",
    }
    assert event.attributes == {"event.attribute": "some event attribute"}


@pytest.mark.parametrize("name", ["logs.json", "events.json"])
def test_protobuf_and_json_decode_alike(name: str, limits: DecodeLimits) -> None:
    document = shift_to_now(load_example(name), NOW)
    from_json = decode_logs_json(document, limits)
    from_protobuf = decode_logs_protobuf(to_protobuf(document), limits)
    assert from_protobuf.items == from_json.items
    assert from_protobuf.rejected == from_json.rejected == 0


# ---------------------------------------------------------------- bodies

BODIES = [
    ({"stringValue": "hello"}, "hello"),
    ({"intValue": "9007199254740993"}, 9007199254740993),
    ({"intValue": 42}, 42),
    ({"doubleValue": 1.5}, 1.5),
    ({"doubleValue": "NaN"}, "NaN"),
    ({"boolValue": False}, False),
    ({"bytesValue": "AAEC/w=="}, "AAEC/w=="),
    ({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}, {}]}}, ["a", 1, None]),
    (
        {
            "kvlistValue": {
                "values": [
                    {"key": "k", "value": {"stringValue": "v"}},
                    {"key": "nested", "value": {"arrayValue": {"values": [{"boolValue": True}]}}},
                ]
            }
        },
        {"k": "v", "nested": [True]},
    ),
    ({"arrayValue": {}}, []),
    ({"kvlistValue": {}}, {}),
    ({}, None),
]


@pytest.mark.parametrize(("body", "expected"), BODIES)
def test_json_body_of_every_kind(body: dict[str, Any], expected: Any, limits: DecodeLimits) -> None:
    [log] = decode_logs_json(request(record(body=body)), limits).items
    assert log.body == expected
    assert type(log.body) is type(expected)


@pytest.mark.parametrize(("body", "expected"), BODIES)
def test_protobuf_body_of_every_kind(
    body: dict[str, Any], expected: Any, limits: DecodeLimits
) -> None:
    [log] = decode_logs_protobuf(to_protobuf(request(record(body=body))), limits).items
    assert log.body == expected


def test_missing_body_is_none(limits: DecodeLimits) -> None:
    document = request(record())
    assert decode_logs_json(document, limits).items[0].body is None
    assert decode_logs_protobuf(to_protobuf(document), limits).items[0].body is None


def test_body_strings_get_a_larger_bound_than_attributes(limits: DecodeLimits) -> None:
    long = "x" * (limits.max_value_chars + 100)
    document = request(
        record(
            body={"stringValue": long},
            attributes=[{"key": "a", "value": {"stringValue": long}}],
        )
    )
    [log] = decode_logs_json(document, limits).items
    assert log.body == long
    assert len(log.attributes["a"]) == limits.max_value_chars


# ---------------------------------------------------------------- JSON spellings


def test_int64_as_string_or_number(limits: DecodeLimits) -> None:
    as_string = record(
        timeUnixNano=str(NOW),
        observedTimeUnixNano=str(NOW + 1),
        flags="1",
        droppedAttributesCount="2",
    )
    as_number = record(
        timeUnixNano=NOW, observedTimeUnixNano=NOW + 1, flags=1, droppedAttributesCount=2
    )
    for fields in (as_string, as_number):
        [log] = decode_logs_json(request(fields), limits).items
        assert (log.time_unix_nano, log.observed_time_unix_nano) == (NOW, NOW + 1)
        assert (log.flags, log.dropped_attributes_count) == (1, 2)


def test_snake_case_keys(limits: DecodeLimits) -> None:
    document = {
        "resource_logs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"string_value": "s"}}]
                },
                "schema_url": "https://opentelemetry.io/schemas/1.26.0",
                "scope_logs": [
                    {
                        "scope": {"name": "lib", "version": "2"},
                        "schema_url": "scope-schema",
                        "log_records": [
                            {
                                "time_unix_nano": str(NOW),
                                "observed_time_unix_nano": str(NOW),
                                "severity_number": 17,
                                "severity_text": "ERROR",
                                "trace_id": TRACE_HEX,
                                "span_id": SPAN_HEX,
                                "event_name": "my.event",
                                "dropped_attributes_count": 3,
                                "body": {
                                    "kvlist_value": {
                                        "values": [{"key": "n", "value": {"int_value": "7"}}]
                                    }
                                },
                                "attributes": [{"key": "b", "value": {"bool_value": True}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    [log] = decode_logs_json(document, limits).items
    assert log.service_name == "s"
    assert log.resource.schema_url == "https://opentelemetry.io/schemas/1.26.0"
    assert log.scope == Scope("lib", "2", {}, "scope-schema")
    assert (log.severity_number, log.severity_text, log.event_name) == (17, "ERROR", "my.event")
    assert (log.trace_id, log.span_id) == (bytes.fromhex(TRACE_HEX), bytes.fromhex(SPAN_HEX))
    assert log.body == {"n": 7}
    assert log.attributes == {"b": True}
    assert log.dropped_attributes_count == 3


@pytest.mark.parametrize(
    ("severity", "number"),
    [
        ("SEVERITY_NUMBER_UNSPECIFIED", 0),
        ("SEVERITY_NUMBER_TRACE", 1),
        ("SEVERITY_NUMBER_INFO", 9),
        ("SEVERITY_NUMBER_WARN", 13),
        ("SEVERITY_NUMBER_ERROR3", 19),
        ("SEVERITY_NUMBER_FATAL4", 24),
        ("13", 13),
        (21, 21),
    ],
)
def test_severity_enum_names_and_numbers(severity: Any, number: int, limits: DecodeLimits) -> None:
    [log] = decode_logs_json(request(record(severityNumber=severity)), limits).items
    assert log.severity_number == number


@pytest.mark.parametrize("severity", ["SEVERITY_NUMBER_LOUD", 25, -1, "loud"])
def test_unknown_severity_is_rejected(severity: Any, limits: DecodeLimits) -> None:
    batch = decode_logs_json(request(record(severityNumber=severity)), limits)
    assert batch.rejected == 1 and not batch.items
    assert "severityNumber" in batch.messages[0]


def test_out_of_range_protobuf_severity_is_rejected(limits: DecodeLimits) -> None:
    message = logs_service_pb2.ExportLogsServiceRequest()
    log = message.resource_logs.add().scope_logs.add().log_records.add()
    log.time_unix_nano = NOW
    log.severity_number = 99  # type: ignore[assignment]  # proto3 enums are open
    batch = decode_logs_protobuf(message.SerializeToString(), limits)
    assert batch.rejected == 1
    assert "severityNumber 99" in batch.messages[0]


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "trace_id", [TRACE_HEX, TRACE_HEX.upper(), "5B8eFFf798038103d269B633813Fc60C"]
)
def test_hex_ids_in_any_case(trace_id: str, limits: DecodeLimits) -> None:
    [log] = decode_logs_json(
        request(record(traceId=trace_id, spanId=SPAN_HEX.upper())), limits
    ).items
    assert log.trace_id == bytes.fromhex(TRACE_HEX)
    assert log.span_id == bytes.fromhex(SPAN_HEX)


def test_all_zero_or_missing_ids_are_none(limits: DecodeLimits) -> None:
    document = request(record(traceId="0" * 32, spanId="0" * 16), record(traceId="", spanId=""))
    for log in decode_logs_json(document, limits).items:
        assert (log.trace_id, log.span_id) == (None, None)
    for log in decode_logs_protobuf(to_protobuf(document), limits).items:
        assert (log.trace_id, log.span_id) == (None, None)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"traceId": base64.b64encode(bytes.fromhex(TRACE_HEX)).decode()}, "traceId"),
        ({"spanId": base64.b64encode(bytes.fromhex(SPAN_HEX)).decode()}, "spanId"),
        ({"traceId": "zz" * 16}, "traceId"),
        ({"spanId": SPAN_HEX + "00"}, "spanId"),
    ],
)
def test_bad_json_ids_are_refused_by_name(
    fields: dict[str, str], named: str, limits: DecodeLimits
) -> None:
    batch = decode_logs_json(request(record(**fields), record()), limits)
    assert batch.rejected == 1 and len(batch.items) == 1
    assert batch.messages[0].startswith(f"log record 0: {named} ")
    assert "hex" in batch.messages[0]


def test_protobuf_id_of_wrong_length_is_refused(limits: DecodeLimits) -> None:
    message = logs_service_pb2.ExportLogsServiceRequest()
    log = message.resource_logs.add().scope_logs.add().log_records.add()
    log.time_unix_nano = NOW
    log.span_id = b"\x01\x02\x03\x04"
    batch = decode_logs_protobuf(message.SerializeToString(), limits)
    assert batch.messages == ["log record 0: spanId has 4 bytes; it must have 8"]


# ---------------------------------------------------------------- times and partial success


def test_observed_time_stands_in_for_a_missing_time(limits: DecodeLimits) -> None:
    document = request({"observedTimeUnixNano": str(NOW)}, {"timeUnixNano": "0"})
    for batch in (
        decode_logs_json(document, limits),
        decode_logs_protobuf(to_protobuf(document), limits),
    ):
        [log] = batch.items
        assert (log.time_unix_nano, log.observed_time_unix_nano) == (NOW, NOW)
        assert batch.messages == [
            "log record 1: timeUnixNano and observedTimeUnixNano are both missing; set at least one"
        ]


def test_window_rejections_say_why(limits: DecodeLimits) -> None:
    document = request(
        record(timeUnixNano=str(NOW - 31 * DAY_NS)),
        record(),
        record(timeUnixNano=str(NOW + 2 * DAY_NS)),
        {"observedTimeUnixNano": str(NOW - 40 * DAY_NS)},
    )
    batch = decode_logs_json(document, limits)
    assert len(batch.items) == 1 and batch.rejected == 3
    assert batch.messages[0].startswith("log record 0: timeUnixNano ")
    assert "older than the 30d retention" in batch.messages[0]
    assert "log record 2" in batch.messages[1] and "future" in batch.messages[1]
    assert batch.messages[2].startswith("log record 3: observedTimeUnixNano (timeUnixNano is 0)")
    assert batch.error_message().count("log record") == 3


def test_bad_resource_rejects_its_records_only(limits: DecodeLimits) -> None:
    document = request(record(), record(), resource={"attributes": [{"key": 5}]})
    document["resourceLogs"].append(request(record())["resourceLogs"][0])
    batch = decode_logs_json(document, limits)
    assert batch.rejected == 2 and len(batch.items) == 1
    assert batch.messages[0] == "log record 0: resource: attribute key must be a string"


def test_non_object_record_is_rejected(limits: DecodeLimits) -> None:
    batch = decode_logs_json(request("not a record", record()), limits)  # type: ignore[arg-type]
    assert batch.rejected == 1 and len(batch.items) == 1


@pytest.mark.parametrize("document", [[], "x", {"resourceLogs": {}}])
def test_malformed_json_document(document: Any, limits: DecodeLimits) -> None:
    with pytest.raises(MalformedPayload):
        decode_logs_json(document, limits)


def test_malformed_protobuf(limits: DecodeLimits) -> None:
    with pytest.raises(MalformedPayload, match="ExportLogsServiceRequest"):
        decode_logs_protobuf(b"\x0a\xff\xff\xff", limits)


def test_protobuf_bytes_body(limits: DecodeLimits) -> None:
    message = logs_service_pb2.ExportLogsServiceRequest()
    log = message.resource_logs.add().scope_logs.add().log_records.add()
    log.time_unix_nano = NOW
    log.body.CopyFrom(common_pb2.AnyValue(bytes_value=b"\x00\x01\x02\xff"))
    log.event_name = "e"
    log.severity_number = logs_pb2.SEVERITY_NUMBER_WARN
    [decoded] = decode_logs_protobuf(message.SerializeToString(), limits).items
    assert (decoded.body, decoded.event_name, decoded.level) == ("AAEC/w==", "e", "warn")
    assert decoded.observed_time_unix_nano == 0


# ---------------------------------------------------------------- levels and search text


def test_levels_follow_severity_ranges() -> None:
    expected = ["trace"] * 4 + ["debug"] * 4 + ["info"] * 4 + ["warn"] * 4 + ["error"] * 4
    expected += ["fatal"] * 4
    assert [level_name(number) for number in range(1, 25)] == expected
    assert level_name(0) is None and level_name(25) is None
    assert level_name(0, "WARNING") == "warn" and level_name(0, "whatever") is None
    assert level_name(9, "ERROR") == "info"  # the number wins over the text
    levels = ("trace", "debug", "info", "warn", "error", "fatal")
    assert [severity_floor(name) for name in levels] == [1, 5, 9, 13, 17, 21]


def test_search_text_joins_body_event_and_message_attributes() -> None:
    attributes = {
        "exception.type": "ValueError",
        "exception.message": "bad input",
        "exception.stacktrace": "Traceback (most recent call last): ...",
        "message": "request failed",
        "user.id": "u-1",
    }
    text = search_text("request failed", attributes, "app.crash")
    assert text == "request failed app.crash ValueError bad input"
    assert search_text({"a": ["x", {"b": "y"}], "n": 3}, {}) == "x y"
    assert search_text(42, {}) == "42"
    assert search_text(True, {}) == "true"
    assert search_text(None, {"log.message": "m"}) == "m"


def test_search_text_is_bounded() -> None:
    assert len(search_text("w " * SEARCH_TEXT_CHARS, {"message": "m"})) == SEARCH_TEXT_CHARS
    huge = {"values": ["word"] * 100_000}
    assert len(search_text(huge, {})) <= SEARCH_TEXT_CHARS


# ---------------------------------------------------------------- rows and store


def _log(resource: Resource, scope: Scope, **fields: Any) -> LogRecord:
    values: dict[str, Any] = {
        "time_unix_nano": NOW,
        "observed_time_unix_nano": 0,
        "severity_number": 9,
        "severity_text": "INFO",
        "body": "hello",
        "attributes": {},
        "resource": resource,
        "scope": scope,
    }
    values.update(fields)
    return LogRecord(**values)


def test_rows_follow_the_table_and_share_resource_text() -> None:
    resource, scope = Resource({"service.name": "svc"}), Scope("lib")
    logs = [
        _log(resource, scope),
        _log(resource, scope, body=None, observed_time_unix_nano=NOW, event_name="e"),
    ]
    part = log_rows(7, logs)
    assert part.table == "logs" and tuple(part.columns) == LOG_COLUMNS
    first, second = (dict(zip(LOG_COLUMNS, row, strict=True)) for row in part.rows)
    assert first["project_id"] == 7 and first["service_name"] == "svc"
    assert first["body"] == '"hello"' and second["body"] is None
    assert first["observed_time"] is None and second["observed_time"] == second["time"]
    assert first["resource_attributes"] is second["resource_attributes"]
    assert first["scope"] is second["scope"]
    assert second["search_text"] == "e"
    assert len(part.days) == 1


class _CapturingWriter:
    def __init__(self) -> None:
        self.parts: list[TableRows] = []

    async def write(self, parts: list[TableRows]) -> None:
        self.parts.extend(parts)


async def test_store_logs_redacts_before_rows() -> None:
    enricher = Enricher(Redactor(DEFAULT_REDACT_KEYS), PriceTable.builtin())
    resource = Resource({"service.name": "svc", "db.password": "hunter2"})
    logs = [
        _log(
            resource,
            Scope(),
            body={"user": "ann", "api_key": "sk-1"},
            attributes={"message": "login", "auth.token": "t-1"},
        )
    ]
    writer = _CapturingWriter()
    await store_logs(writer, enricher, 1, logs)  # type: ignore[arg-type]
    [part] = writer.parts
    row = dict(zip(LOG_COLUMNS, part.rows[0], strict=True))
    assert '"db.password":"[REDACTED]"' in row["resource_attributes"]
    assert logs[0].attributes["auth.token"] == REDACTED
    assert logs[0].body == {"user": "ann", "api_key": REDACTED}
    assert "sk-1" not in row["search_text"] and "sk-1" not in row["body"]
    await store_logs(writer, enricher, 1, [])  # type: ignore[arg-type]
    assert len(writer.parts) == 1
