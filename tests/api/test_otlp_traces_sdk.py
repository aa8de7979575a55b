"""The real OpenTelemetry Python SDK exporting to the collector, read back field by field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from otlp_testkit import parse_time, stored_span_ids, time_of
from support import Collector

SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
RESOURCE_ATTRIBUTES = {
    "service.name": "assistant-api",
    "service.version": "2.3.1",
    "deployment.environment.name": "test",
    "host.cpu.count": 8,
}
ROOT_ATTRIBUTES = {
    "http.request.method": "POST",
    "http.route": "/chat",
    "http.response.status_code": 200,
    "assistant.turns": 3,
    "assistant.temperature": 0.7,
    "assistant.streaming": True,
    "assistant.cached": False,
    "assistant.tags": ("support", "billing"),
    "assistant.choices": (1, 2, 3),
    "assistant.scores": (0.5, 0.25),
    "assistant.flags": (True, False, True),
}
CHILD_ATTRIBUTES = {
    "server.address": "api.example.com",
    "server.port": 443,
    "llm.latency_budget_ms": 1500.5,
}


class RecordingExporter(SpanExporter):
    """Delegates to the real exporter and keeps the result of every export."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.results: list[tuple[int, SpanExportResult]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        self.results.append((len(spans), result))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class Exported:
    spans: list[ReadableSpan]
    results: list[tuple[int, SpanExportResult]]
    resource: Resource
    trace_id: str
    linked: SpanContext


def _produce(url: str, key: str, *, batch: bool, compression: Compression) -> Exported:
    """Nested SERVER → CLIENT → INTERNAL spans with every attribute type, an exception, errors."""
    resource = Resource.create(RESOURCE_ATTRIBUTES)
    provider = TracerProvider(resource=resource)
    memory = InMemorySpanExporter()
    otlp = RecordingExporter(
        OTLPSpanExporter(
            endpoint=f"{url}/v1/traces",
            headers={"Authorization": f"Bearer {key}"},
            compression=compression,
            timeout=15,
        )
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    if batch:
        provider.add_span_processor(BatchSpanProcessor(otlp, schedule_delay_millis=60_000))
    else:
        provider.add_span_processor(SimpleSpanProcessor(otlp))
    tracer = provider.get_tracer(
        "assistant.tests", "1.2.3", schema_url=SCHEMA_URL, attributes={"scope.kind": "test"}
    )
    linked = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with tracer.start_as_current_span(
        "POST /chat", kind=SpanKind.SERVER, attributes=ROOT_ATTRIBUTES
    ) as root:
        with tracer.start_as_current_span(
            "chat completion", kind=SpanKind.CLIENT, attributes=CHILD_ATTRIBUTES
        ) as child:
            with tracer.start_as_current_span(
                "parse reply",
                kind=SpanKind.INTERNAL,
                links=[Link(linked, {"link.reason": "retry of"})],
            ) as grandchild:
                time.sleep(0.01)
                try:
                    raise ValueError("reply is not JSON")
                except ValueError as error:
                    grandchild.record_exception(error, attributes={"parse.offset": 17})
                grandchild.set_status(Status(StatusCode.ERROR, "could not parse the reply"))
            time.sleep(0.005)
            child.add_event("first chunk", {"chunk.index": 0, "chunk.final": False})
            child.set_status(Status(StatusCode.ERROR, "upstream returned garbage"))
        root.set_status(Status(StatusCode.OK))
    assert provider.force_flush(15_000)
    provider.shutdown()
    spans = list(memory.get_finished_spans())
    return Exported(
        spans=spans,
        results=otlp.results,
        resource=resource,
        trace_id=format(spans[0].context.trace_id, "032x"),
        linked=linked,
    )


def _plain(value: Any) -> Any:
    """SDK attribute values as JSON gives them back (tuples become lists)."""
    if isinstance(value, tuple):
        return list(value)
    return value


def _attributes(attributes: Any) -> dict[str, Any]:
    return {key: _plain(value) for key, value in (attributes or {}).items()}


def _check_span(stored: dict[str, Any], sdk: ReadableSpan) -> None:
    assert stored["span_id"] == format(sdk.context.span_id, "016x")
    expected_parent = format(sdk.parent.span_id, "016x") if sdk.parent else None
    assert stored["parent_span_id"] == expected_parent
    assert stored["name"] == sdk.name
    assert stored["service"] == "assistant-api"
    assert stored["kind"] == sdk.kind.name.lower()
    assert sdk.start_time is not None and sdk.end_time is not None
    assert parse_time(stored["start_time"]) == time_of(sdk.start_time)
    assert parse_time(stored["end_time"]) == time_of(sdk.end_time)
    # Stored from the nanosecond timestamps, so exactly the SDK's duration.
    assert stored["duration_ms"] == pytest.approx((sdk.end_time - sdk.start_time) / 1e6, abs=1e-9)
    assert stored["status"] == sdk.status.status_code.name.lower()
    assert stored["status_message"] == (sdk.status.description or "")
    assert stored["attributes"] == _attributes(sdk.attributes)
    assert stored["resource"] == _attributes(sdk.resource.attributes)
    assert stored["scope"] == {
        "name": "assistant.tests",
        "version": "1.2.3",
        "attributes": {"scope.kind": "test"},
        "schema_url": SCHEMA_URL,
    }
    assert len(stored["events"]) == len(sdk.events)
    for event, sdk_event in zip(stored["events"], sdk.events, strict=True):
        assert event["name"] == sdk_event.name
        assert event["time_unix_nano"] == sdk_event.timestamp
        assert parse_time(event["time"]) == time_of(sdk_event.timestamp)
        assert event["attributes"] == _attributes(sdk_event.attributes)
    assert len(stored["links"]) == len(sdk.links)
    for link, sdk_link in zip(stored["links"], sdk.links, strict=True):
        assert link["trace_id"] == format(sdk_link.context.trace_id, "032x")
        assert link["span_id"] == format(sdk_link.context.span_id, "016x")
        assert link["attributes"] == _attributes(sdk_link.attributes)


async def _read(client: httpx.AsyncClient, trace_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/traces/{trace_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.mark.parametrize(
    ("batch", "compression"),
    [
        (True, Compression.NoCompression),
        (True, Compression.Gzip),
        (False, Compression.Deflate),
    ],
    ids=["batch", "batch gzip", "simple deflate"],
)
async def test_sdk_trace_round_trip(
    collector: Collector,
    key: str,
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    project_name: str,
    batch: bool,
    compression: Compression,
) -> None:
    exported = await asyncio.to_thread(
        _produce, collector.url, key, batch=batch, compression=compression
    )
    # Every export the SDK made succeeded: one for the batch, one per span otherwise.
    assert [result for _, result in exported.results] == [SpanExportResult.SUCCESS] * (
        1 if batch else 3
    )
    assert sum(count for count, _ in exported.results) == 3
    by_name = {span.name: span for span in exported.spans}
    root, child, grandchild = (
        by_name[name] for name in ("POST /chat", "chat completion", "parse reply")
    )

    trace = await _read(client, exported.trace_id)
    assert trace["trace_id"] == exported.trace_id
    assert trace["span_count"] == 3
    assert trace["error_count"] == 2
    assert trace["root_service"] == "assistant-api"
    assert trace["root_name"] == "POST /chat"
    assert trace["services"] == ["assistant-api"]
    assert root.start_time is not None and root.end_time is not None
    assert parse_time(trace["start_time"]) == time_of(root.start_time)
    assert trace["duration_ms"] == pytest.approx((root.end_time - root.start_time) / 1e6, abs=0.002)

    # Ordered by start: root, child, grandchild; each linked to its parent.
    stored_root, stored_child, stored_grandchild = trace["spans"]
    _check_span(stored_root, root)
    _check_span(stored_child, child)
    _check_span(stored_grandchild, grandchild)
    assert stored_root["parent_span_id"] is None
    assert stored_child["parent_span_id"] == stored_root["span_id"]
    assert stored_grandchild["parent_span_id"] == stored_child["span_id"]
    assert [span["kind"] for span in trace["spans"]] == ["server", "client", "internal"]
    assert [(span["status"], span["status_message"]) for span in trace["spans"]] == [
        ("ok", ""),
        ("error", "upstream returned garbage"),
        ("error", "could not parse the reply"),
    ]
    # Durations are nested as the SDK measured them.
    assert (
        stored_root["duration_ms"]
        > stored_child["duration_ms"]
        > stored_grandchild["duration_ms"]
        >= 10
    )

    # The resource, with the SDK's own telemetry.sdk.* attributes.
    assert stored_root["resource"]["service.version"] == "2.3.1"
    assert stored_root["resource"]["telemetry.sdk.language"] == "python"
    assert stored_root["attributes"]["assistant.tags"] == ["support", "billing"]
    assert stored_root["attributes"]["assistant.flags"] == [True, False, True]
    assert stored_root["attributes"]["assistant.temperature"] == 0.7

    (exception,) = stored_grandchild["events"]
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "ValueError"
    assert exception["attributes"]["exception.message"] == "reply is not JSON"
    stacktrace = exception["attributes"]["exception.stacktrace"]
    assert stacktrace.startswith("Traceback (most recent call last):")
    assert "ValueError: reply is not JSON" in stacktrace
    assert exception["attributes"]["parse.offset"] == 17
    (chunk,) = stored_child["events"]
    assert chunk["attributes"] == {"chunk.index": 0, "chunk.final": False}
    (link,) = stored_grandchild["links"]
    assert (link["trace_id"], link["span_id"]) == (
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
    )

    assert len(await stored_span_ids(db, project_name, [exported.trace_id])) == 3


async def test_sdk_sees_an_export_failure_with_a_bad_key(collector: Collector) -> None:
    exported = await asyncio.to_thread(
        _produce, collector.url, "tc_wrong", batch=True, compression=Compression.NoCompression
    )
    assert exported.results == [(3, SpanExportResult.FAILURE)]
