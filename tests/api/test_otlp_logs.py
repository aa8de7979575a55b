"""POST /v1/logs on a real collector (examples, the Python SDK, errors), read back from the DB."""

from __future__ import annotations

import base64
import json
import logging
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from support import load_example, shift_to_now

JSON_ROWS = ("body", "attributes", "resource_attributes", "scope")
DAY_NS = 86400 * 1_000_000_000


def now_ns() -> int:
    # timestamptz keeps microseconds; starting on a whole microsecond makes the example's
    # timestamps (whole microseconds apart) come back exactly.
    return time.time_ns() // 1000 * 1000


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(url, **kwargs)


async def stored(db: asyncpg.Connection, project: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT l.* FROM logs l JOIN projects p ON p.id = l.project_id WHERE p.name = $1 "
        "ORDER BY l.time, l.severity_number",
        project,
    )
    result = []
    for row in rows:
        values = dict(row)
        for column in JSON_ROWS:
            if values[column] is not None:
                values[column] = json.loads(values[column])
        result.append(values)
    return result


# ---------------------------------------------------------------- what the example says


def plain(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as the plain JSON the collector should store (written apart
    from the decoder on purpose)."""
    if not value:
        return None
    [(kind, raw)] = value.items()
    if kind == "intValue":
        return int(raw)
    if kind == "arrayValue":
        return [plain(item) for item in raw.get("values", [])]
    if kind == "kvlistValue":
        return attributes(raw.get("values", []))
    return raw  # stringValue, boolValue, doubleValue, bytesValue (base64 text)


def attributes(key_values: list[dict[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: plain(kv["value"]) for kv in key_values}


def moment(unix_nano: int) -> datetime:
    assert unix_nano % 1000 == 0, "the test sends whole microseconds"
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=unix_nano // 1000)


def expected_rows(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_logs in document["resourceLogs"]:
        resource = attributes(resource_logs["resource"]["attributes"])
        for scope_logs in resource_logs["scopeLogs"]:
            scope = scope_logs.get("scope", {})
            for record in scope_logs["logRecords"]:
                yield {
                    "time": moment(int(record["timeUnixNano"])),
                    "observed_time": moment(int(record["observedTimeUnixNano"])),
                    "service_name": resource["service.name"],
                    "severity_number": record["severityNumber"],
                    "severity_text": record["severityText"],
                    "body": plain(record["body"]),
                    "attributes": attributes(record.get("attributes", [])),
                    "resource_attributes": resource,
                    "scope": {
                        "name": scope.get("name", ""),
                        "version": scope.get("version", ""),
                        "attributes": attributes(scope.get("attributes", [])),
                        "schema_url": scope_logs.get("schemaUrl", ""),
                    },
                    "trace_id": bytes.fromhex(record["traceId"]) if "traceId" in record else None,
                    "span_id": bytes.fromhex(record["spanId"]) if "spanId" in record else None,
                    "flags": record.get("flags", 0),
                    "event_name": record.get("eventName", ""),
                    "dropped_attributes_count": record.get("droppedAttributesCount", 0),
                }


def to_protobuf(document: dict[str, Any]) -> bytes:
    """OTLP JSON → protobuf bytes; ParseDict reads ids as base64, so hex ids are converted."""

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64encode(bytes.fromhex(value)).decode()
                if key in ("traceId", "spanId")
                else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    message = json_format.ParseDict(fix(document), logs_service_pb2.ExportLogsServiceRequest())
    return message.SerializeToString()


SEARCH_TEXTS = {
    "logs.json": "Example log record",
    "events.json": "https://www.guidgenerator.com/online-guid-generator.aspx "
    "https://wwww.google.com Free Online GUID Generator browser.page_view",
}


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
@pytest.mark.parametrize("example", ["logs.json", "events.json"])
async def test_example_stored_intact(
    collector, make_key, project_name, db, example: str, encoding: str
) -> None:
    key = await make_key(project_name, "ingest")
    document = shift_to_now(load_example(example), now_ns())
    if encoding == "json":
        response = await post(f"{collector.url}/v1/logs", json=document, headers=auth(key))
        assert response.status_code == 200, response.text
        assert response.json() == {}
    else:
        response = await post(
            f"{collector.url}/v1/logs",
            content=to_protobuf(document),
            headers={**auth(key), "Content-Type": "application/x-protobuf"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/x-protobuf"
        parsed = logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)
        assert not parsed.HasField("partial_success")

    rows = await stored(db, project_name)
    expected = list(expected_rows(document))
    assert len(rows) == len(expected) == 1
    for row, wanted in zip(rows, expected, strict=True):
        assert row.pop("search_text") == SEARCH_TEXTS[example]
        row.pop("project_id")
        row.pop("id")  # the tie-breaker for log pagination, assigned by the database
        assert len(row.pop("log_id")) == 16  # the content hash that makes retries no-ops
        assert row == wanted

    # The GIN index's expression finds it by words of the body.
    words = "example record" if example == "logs.json" else "guid generator"
    found = await db.fetchval(
        "SELECT count(*) FROM logs l JOIN projects p ON p.id = l.project_id "
        "WHERE p.name = $1 AND to_tsvector('simple', search_text) @@ plainto_tsquery('simple', $2)",
        project_name,
        words,
    )
    assert found == 1


BODIES = [
    ({"stringValue": "plain text"}, "plain text", "string"),
    ({"intValue": "-9007199254740993"}, -9007199254740993, "number"),
    ({"doubleValue": 2.5}, 2.5, "number"),
    ({"boolValue": True}, True, "boolean"),
    ({"bytesValue": "3q2+7w=="}, "3q2+7w==", "string"),
    ({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 1}]}}, ["a", 1], "array"),
    (
        {"kvlistValue": {"values": [{"key": "k", "value": {"kvlistValue": {"values": []}}}]}},
        {"k": {}},
        "object",
    ),
    (None, None, None),
]


async def test_every_body_kind_comes_back_as_sent(collector, make_key, project_name, db) -> None:
    key = await make_key(project_name, "ingest")
    start = now_ns()
    records = []
    for index, (body, _, _) in enumerate(BODIES):
        record: dict[str, Any] = {"timeUnixNano": str(start + index * 1000)}
        if body is not None:
            record["body"] = body
        records.append(record)
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    response = await post(f"{collector.url}/v1/logs", json=document, headers=auth(key))
    assert response.status_code == 200, response.text
    rows = await db.fetch(
        "SELECT body::text AS body, jsonb_typeof(body) AS kind, service_name FROM logs l "
        "JOIN projects p ON p.id = l.project_id WHERE p.name = $1 ORDER BY l.time",
        project_name,
    )
    assert [(None if row["body"] is None else json.loads(row["body"])) for row in rows] == [
        expected for _, expected, _ in BODIES
    ]
    assert [row["kind"] for row in rows] == [kind for _, _, kind in BODIES]
    assert {row["service_name"] for row in rows} == {"unknown_service"}


# ---------------------------------------------------------------- the OpenTelemetry SDK


class RecordingExporter(OTLPLogExporter):
    """The SDK's exporter, keeping each export's result so a failure shows in the test."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[LogRecordExportResult] = []

    def export(self, batch: Any) -> LogRecordExportResult:
        result = super().export(batch)
        self.results.append(result)
        return result


async def test_python_logging_through_the_sdk(collector, make_key, project_name, db) -> None:
    key = await make_key(project_name, "ingest")
    exporter = RecordingExporter(
        endpoint=f"{collector.url}/v1/logs", headers=auth(key), compression=Compression.Gzip
    )
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "sdk-logs-test", "deploy.secret": "s3"})
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with warnings.catch_warnings():
        # The SDK's handler is deprecated in favour of a contrib package; it still is
        # what most applications run today.
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)
    logger = logging.getLogger(f"tests.sdk.{project_name}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    tracer = TracerProvider().get_tracer("tests")
    try:
        logger.info(
            "user %s signed in", "ann", extra={"user.id": "u-1", "attempt": 2, "api_key": "sk-1"}
        )
        with tracer.start_as_current_span("handle-request") as span:
            try:
                raise ValueError("the prompt was empty")
            except ValueError:
                logger.exception("request failed")
        provider.force_flush()
    finally:
        logger.removeHandler(handler)
        provider.shutdown()
    assert exporter.results == [LogRecordExportResult.SUCCESS] * 2

    info, error = await stored(db, project_name)
    assert info["body"] == "user ann signed in"
    assert (info["severity_number"], info["severity_text"]) == (9, "INFO")
    assert info["attributes"]["user.id"] == "u-1"
    assert info["attributes"]["attempt"] == 2
    assert info["attributes"]["api_key"] == "[REDACTED]"
    assert info["attributes"]["code.function.name"] == "test_python_logging_through_the_sdk"
    assert info["trace_id"] is None and info["span_id"] is None
    assert info["service_name"] == "sdk-logs-test"
    assert info["resource_attributes"]["service.name"] == "sdk-logs-test"
    assert info["resource_attributes"]["deploy.secret"] == "[REDACTED]"
    assert info["resource_attributes"]["telemetry.sdk.language"] == "python"
    assert info["scope"]["name"] == logger.name
    assert info["observed_time"] >= info["time"]
    assert info["search_text"] == "user ann signed in"

    assert error["body"] == "request failed"
    assert (error["severity_number"], error["severity_text"]) == (17, "ERROR")
    assert error["attributes"]["exception.type"] == "ValueError"
    assert error["attributes"]["exception.message"] == "the prompt was empty"
    stacktrace = error["attributes"]["exception.stacktrace"]
    assert stacktrace.startswith("Traceback (most recent call last):")
    assert stacktrace.rstrip().endswith("ValueError: the prompt was empty")
    context = span.get_span_context()
    assert error["trace_id"] == context.trace_id.to_bytes(16, "big")
    assert error["span_id"] == context.span_id.to_bytes(8, "big")
    assert error["flags"] & 0xFF == int(context.trace_flags)
    assert error["search_text"] == "request failed ValueError the prompt was empty"


# ---------------------------------------------------------------- errors and partial success


async def test_bad_protobuf_is_a_400_status(collector, make_key, project_name) -> None:
    key = await make_key(project_name, "ingest")
    response = await post(
        f"{collector.url}/v1/logs",
        content=b"\x0a\xff\xff\xff\xff",
        headers={**auth(key), "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    status = status_pb2.Status.FromString(response.content)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "ExportLogsServiceRequest" in status.message


async def test_partial_success_keeps_the_good_records(
    collector, make_key, project_name, db
) -> None:
    key = await make_key(project_name, "ingest")
    now = now_ns()
    records = [
        {"timeUnixNano": str(now), "body": {"stringValue": "kept"}},
        {"timeUnixNano": str(now), "traceId": "not-a-trace-id", "body": {"stringValue": "x"}},
        {"timeUnixNano": str(now - 40 * DAY_NS), "body": {"stringValue": "too old"}},
        {"body": {"stringValue": "no time at all"}},
        {"observedTimeUnixNano": str(now + 1000), "body": {"stringValue": "observed only"}},
    ]
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    response = await post(f"{collector.url}/v1/logs", json=document, headers=auth(key))
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedLogRecords"] == "3"  # int64 is a string in proto3 JSON
    message = partial["errorMessage"]
    assert "log record 1: traceId 'not-a-trace-id' must be 32 hex characters" in message
    assert "log record 2: timeUnixNano" in message and "30d retention" in message
    assert "log record 3: timeUnixNano and observedTimeUnixNano are both missing" in message

    kept, observed = await stored(db, project_name)
    assert kept["body"] == "kept" and kept["observed_time"] is None
    assert observed["body"] == "observed only"
    assert observed["time"] == observed["observed_time"] == moment(now + 1000)


async def test_partial_success_in_protobuf(collector, make_key, project_name) -> None:
    key = await make_key(project_name, "ingest")
    request = logs_service_pb2.ExportLogsServiceRequest()
    scope_logs = request.resource_logs.add().scope_logs.add()
    scope_logs.log_records.add(time_unix_nano=time.time_ns(), span_id=b"\x01\x02")
    scope_logs.log_records.add(time_unix_nano=time.time_ns())
    response = await post(
        f"{collector.url}/v1/logs",
        content=request.SerializeToString(),
        headers={**auth(key), "Content-Type": "application/x-protobuf"},
    )
    assert response.status_code == 200
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert (
        answer.partial_success.error_message == "log record 0: spanId has 2 bytes; it must have 8"
    )


async def test_retried_log_export_is_stored_once(collector, make_key, project_name, db) -> None:
    key = await make_key(project_name, "ingest", "read")
    document = shift_to_now(load_example("logs.json"), now_ns())
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    record["attributes"] = [
        *record.get("attributes", []),
        {"key": "exception.type", "value": {"stringValue": "RetryProbe"}},
        {"key": "exception.message", "value": {"stringValue": "boom"}},
    ]
    for _ in range(2):  # the second is a client retrying after a lost answer
        response = await post(f"{collector.url}/v1/logs", json=document, headers=auth(key))
        assert response.status_code == 200, response.text
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    assert await db.fetchval("SELECT count(*) FROM logs WHERE project_id = $1", project_id) == 1
    group_count = await db.fetchval(
        "SELECT count FROM error_groups WHERE project_id = $1 AND type = 'RetryProbe'", project_id
    )
    assert group_count == 1
    # A record that differs in anything (here its body) is a different record.
    record["body"] = {"stringValue": "another line"}
    await post(f"{collector.url}/v1/logs", json=document, headers=auth(key))
    assert await db.fetchval("SELECT count(*) FROM logs WHERE project_id = $1", project_id) == 2
