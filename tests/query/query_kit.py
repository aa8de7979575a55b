"""Builders for the query tests: spans and logs sent through every ingest path, and checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from otlp_testkit import SpanSpec, attributes_json, attributes_pb, traces_json, traces_pb
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import create_key

PROTOBUF = {"content-type": "application/x-protobuf"}
_STATUS = {"unset": 0, "ok": 1, "error": 2}


async def new_project_client(
    collector: Collector, engine: AsyncEngine, *scopes: str
) -> httpx.AsyncClient:
    """A client on the shared collector with a key of a new project (close it after use)."""
    project = f"project-{uuid.uuid4().hex[:8]}"
    key = (await create_key(engine, project, list(scopes or ("ingest", "read")))).key
    return httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def base_time(minutes_ago: int) -> datetime:
    """A whole millisecond some minutes back, so every offset from it is exact."""
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def nanos(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


@dataclass
class Span:
    trace_id: str
    span_id: str
    service: str
    name: str
    start: datetime
    duration_ms: float
    parent: str | None = None
    status: str = "unset"
    attributes: dict[str, Any] = field(default_factory=dict)

    def native(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "name": self.name,
            "service": self.service,
            "start_time": rfc3339(self.start),
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attributes": self.attributes,
        }
        if self.parent:
            item["parent_span_id"] = self.parent
        return item

    def otlp(self) -> SpanSpec:
        start = nanos(self.start)
        return SpanSpec(
            trace_id=self.trace_id,
            span_id=self.span_id,
            name=self.name,
            start_ns=start,
            end_ns=start + int(self.duration_ms * 1_000_000),
            parent_span_id=self.parent or "",
            attributes=self.attributes,
            status_code=_STATUS[self.status],
        )


def _by_service(spans: list[Span]) -> dict[str, list[Span]]:
    grouped: dict[str, list[Span]] = {}
    for span in spans:
        grouped.setdefault(span.service, []).append(span)
    return grouped


async def send_spans(client: httpx.AsyncClient, spans: list[Span], path: str) -> None:
    """Send through one ingest path: "native", "otlp-json" or "otlp-protobuf"."""
    if path == "native":
        response = await client.post(
            "/api/v1/ingest/spans", json={"spans": [span.native() for span in spans]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.text
        return
    groups = _by_service(spans)
    if path == "otlp-json":
        document: dict[str, Any] = {"resourceSpans": []}
        for service, members in groups.items():
            part = traces_json([span.otlp() for span in members], service=service)
            document["resourceSpans"] += part["resourceSpans"]
        response = await client.post("/v1/traces", json=document)
    else:
        request = traces_pb([], service="unused")
        del request.resource_spans[:]
        for service, members in groups.items():
            part = traces_pb([span.otlp() for span in members], service=service)
            request.resource_spans.extend(part.resource_spans)
        response = await client.post(
            "/v1/traces", content=request.SerializeToString(), headers=PROTOBUF
        )
    assert response.status_code == 200, response.text
    assert b"rejected" not in response.content, response.content


@dataclass
class Log:
    key: str  # the test's own name for the record, carried in attributes as `test.key`
    service: str
    time: datetime
    body: str
    severity_number: int = 9
    severity_text: str = "INFO"
    level: str = "info"  # native only
    trace_id: str | None = None
    span_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None  # native only

    def all_attributes(self) -> dict[str, Any]:
        return {**self.attributes, "test.key": self.key}

    def native(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "timestamp": rfc3339(self.time),
            "level": self.level,
            "message": self.body,
            "service": self.service,
            "attributes": self.all_attributes(),
        }
        if self.trace_id:
            item["trace_id"] = self.trace_id
        if self.span_id:
            item["span_id"] = self.span_id
        if self.error:
            item["error"] = self.error
        return item

    def otlp_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "timeUnixNano": str(nanos(self.time)),
            "severityNumber": self.severity_number,
            "severityText": self.severity_text,
            "body": {"stringValue": self.body},
            "attributes": attributes_json(self.all_attributes()),
        }
        if self.trace_id:
            record["traceId"] = self.trace_id
        if self.span_id:
            record["spanId"] = self.span_id
        return record

    def otlp_pb(self) -> logs_pb2.LogRecord:
        return logs_pb2.LogRecord(
            time_unix_nano=nanos(self.time),
            severity_number=self.severity_number,  # type: ignore[arg-type]
            severity_text=self.severity_text,
            body=common_pb2.AnyValue(string_value=self.body),
            attributes=attributes_pb(self.all_attributes()),
            trace_id=bytes.fromhex(self.trace_id) if self.trace_id else b"",
            span_id=bytes.fromhex(self.span_id) if self.span_id else b"",
        )


async def send_logs(client: httpx.AsyncClient, logs: list[Log], path: str) -> None:
    if path == "native":
        response = await client.post(
            "/api/v1/ingest/logs", json={"logs": [log.native() for log in logs]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.text
        return
    groups: dict[str, list[Log]] = {}
    for log in logs:
        groups.setdefault(log.service, []).append(log)
    if path == "otlp-json":
        document = {
            "resourceLogs": [
                {
                    "resource": {"attributes": attributes_json({"service.name": service})},
                    "scopeLogs": [
                        {
                            "scope": {"name": "tests.query"},
                            "logRecords": [m.otlp_json() for m in members],
                        }
                    ],
                }
                for service, members in groups.items()
            ]
        }
        response = await client.post("/v1/logs", json=document)
    else:
        request = logs_service_pb2.ExportLogsServiceRequest(
            resource_logs=[
                logs_pb2.ResourceLogs(
                    resource=resource_pb2.Resource(
                        attributes=attributes_pb({"service.name": service})
                    ),
                    scope_logs=[
                        logs_pb2.ScopeLogs(
                            scope=common_pb2.InstrumentationScope(name="tests.query"),
                            log_records=[member.otlp_pb() for member in members],
                        )
                    ],
                )
                for service, members in groups.items()
            ]
        )
        response = await client.post(
            "/v1/logs", content=request.SerializeToString(), headers=PROTOBUF
        )
    assert response.status_code == 200, response.text
    assert b"rejected" not in response.content, response.content


async def get_ok(client: httpx.AsyncClient, path: str, params: Any = None) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def trace_ids(client: httpx.AsyncClient, params: Any = None) -> list[str]:
    return [item["trace_id"] for item in (await get_ok(client, "/api/v1/traces", params))["traces"]]


async def log_keys(client: httpx.AsyncClient, params: Any = None) -> list[str]:
    found = (await get_ok(client, "/api/v1/logs", params))["logs"]
    return [item["attributes"]["test.key"] for item in found]


async def page_through(
    client: httpx.AsyncClient, path: str, items: str, params: dict[str, Any]
) -> list[list[dict[str, Any]]]:
    """Every page of a search, following next_cursor until it is null."""
    pages = []
    cursor = None
    for _ in range(1000):
        answer = await get_ok(client, path, {**params, **({"cursor": cursor} if cursor else {})})
        pages.append(answer[items])
        cursor = answer["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("paging did not end")
