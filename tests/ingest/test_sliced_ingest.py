"""Span and log decoding and row building run in slices on the event loop's thread, not on threads.

A thread decoding Python shares the interpreter lock with the event loop, and every system
call the loop makes hands the lock over and back (see app/ingest/offload.py): under
overload /healthz waited for hundreds of such handovers. These tests hold the mechanism:
the work runs on the loop's thread, in more than one slice, with loop turns between them;
a cancelled request stops its work; and slicing changes no row.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Generator
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from otlp_testkit import attributes_pb, now_ns, simple_span, traces_pb
from support import LoopTurns

from app.config import Settings
from app.domain.errors import errors_from_spans
from app.ingest.enrich import Enricher
from app.ingest.error_groups import error_rows
from app.ingest.log_rows import log_rows
from app.ingest.offload import Offload, drive
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_logs import decode_logs_protobuf
from app.ingest.otlp_traces import decode_traces_protobuf, decode_traces_protobuf_steps
from app.ingest.rows import span_rows
from app.ingest.store import SPANS_PER_STEP, span_parts_steps
from app.ingest.store_logs import RECORDS_PER_STEP as LOG_RECORDS_PER_STEP
from app.ingest.store_logs import errors_from_logs, log_parts_steps, redact

DAY = 86_400 * 10**9


def _limits() -> DecodeLimits:
    now = now_ns()
    return DecodeLimits(now - 7 * DAY, now + DAY, max_attributes=128, max_value_chars=16_384)


def _request(spans: int) -> trace_service_pb2.ExportTraceServiceRequest:
    """Two resources (one with a secret to redact), spans on two days, exception events."""
    requests = []
    for service, count, age in (("checkout", spans // 2, 0), ("billing", spans - spans // 2, DAY)):
        specs = [simple_span(name=f"{service} {index}", age_ns=age) for index in range(count)]
        for spec in specs:
            spec.attributes = {"note": "x" * 40, "index": 1, "api_key": "secret"}
        requests.append(traces_pb(specs, service=service))
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[*requests[0].resource_spans, *requests[1].resource_spans]
    )
    request.resource_spans[0].resource.attributes.extend(attributes_pb({"password": "p"}))
    for resource_spans in request.resource_spans:
        for index, span in enumerate(resource_spans.scope_spans[0].spans):
            if index % 7 == 0:
                span.events.add(
                    name="exception",
                    time_unix_nano=span.start_time_unix_nano,
                    attributes=attributes_pb({"exception.type": "E", "exception.message": "m"}),
                )
    return request


def _on_threads(steps: Generator[None, None, Any], threads: set[int]) -> Any:
    """`steps`, noting the thread each step runs on."""
    while True:
        threads.add(threading.get_ident())
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        yield


async def test_a_large_batch_is_decoded_in_slices_on_the_event_loop() -> None:
    body = _request(6_000).SerializeToString()
    offload = Offload()
    threads: set[int] = set()
    try:
        async with LoopTurns() as loop:
            batch = await offload.sliced(
                _on_threads(decode_traces_protobuf_steps(body, _limits()), threads)
            )
    finally:
        offload.close()
    assert threads == {threading.get_ident()}  # the loop's own thread, never a pool thread
    # 6,000 spans are tens of milliseconds of decoding, many 2 ms slices, and the loop ran
    # other callbacks between them.
    assert offload.slices >= 2
    assert loop.turns >= offload.slices - 1
    assert batch.items == decode_traces_protobuf(body, _limits()).items
    assert len(batch.items) == 6_000 and not batch.rejected


def test_rows_built_in_slices_are_the_rows_built_at_once() -> None:
    spans = decode_traces_protobuf(_request(5 * SPANS_PER_STEP + 3).SerializeToString(), _limits())
    enricher = Enricher.from_settings(Settings())
    reference = copy.deepcopy(spans.items)
    enricher.spans(reference)
    expected = [span_rows(7, reference), error_rows(7, errors_from_spans(reference))]

    parts = drive(span_parts_steps(enricher, 7, spans.items))

    assert [part.table for part in parts] == ["spans", "error_events"]
    for part, want in zip(parts, expected, strict=True):
        assert list(part.columns) == list(want.columns)
        assert part.rows == want.rows
        assert part.days == want.days
    assert len(parts[0].days) == 2
    assert len(parts[1].rows) == len(expected[1].rows) > SPANS_PER_STEP // 7
    # The shared resource is redacted in the rows of every chunk of its spans.
    columns = list(parts[0].columns)
    service, resource = columns.index("service_name"), columns.index("resource_attributes")
    checkout = [row[resource] for row in parts[0].rows if row[service] == "checkout"]
    assert checkout and all('"password":"[REDACTED]"' in text for text in checkout)


async def test_a_cancelled_request_stops_its_slices() -> None:
    steps = 0
    closed = False

    def endless() -> Generator[None, None, None]:
        nonlocal steps, closed
        try:
            while True:
                steps += 1
                yield
        finally:
            closed = True

    offload = Offload()
    task = asyncio.create_task(offload.sliced(endless()))
    for _ in range(3):
        await asyncio.sleep(0)
    assert steps > 0 and offload.slices >= 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed
    after = steps
    for _ in range(3):
        await asyncio.sleep(0)
    assert steps == after
    offload.close()


def test_log_rows_built_in_slices_are_the_rows_built_at_once() -> None:
    now = now_ns()
    secret = {"key": "password", "value": {"stringValue": "p"}}
    records = [
        {
            "timeUnixNano": str(now - (index % 2) * DAY),
            "body": {"stringValue": f"line {index}"},
            "attributes": [
                {"key": "token", "value": {"stringValue": "t"}},
                *(
                    [{"key": "exception.type", "value": {"stringValue": "E"}}]
                    if index % 5 == 0
                    else []
                ),
            ],
        }
        for index in range(3 * LOG_RECORDS_PER_STEP + 5)
    ]
    document = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": service}},
                        secret,
                    ]
                },
                "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": part}],
            }
            for service, part in (("a", records[:40]), ("b", records[40:]))
        ]
    }
    body = json_format.ParseDict(document, logs_service_pb2.ExportLogsServiceRequest())
    batch = decode_logs_protobuf(body.SerializeToString(), _limits())
    enricher = Enricher.from_settings(Settings())
    reference = copy.deepcopy(batch.items)
    redact(enricher, reference)
    expected = [log_rows(7, reference), error_rows(7, errors_from_logs(reference))]

    parts = drive(log_parts_steps(enricher, 7, batch.items))

    assert [part.table for part in parts] == ["logs", "error_events"]
    for part, want in zip(parts, expected, strict=True):
        assert part.rows == want.rows
        assert part.days == want.days
    assert len(parts[0].rows) == len(records) and len(parts[0].days) == 2
    assert "[REDACTED]" in str(parts[0].rows[-1])


async def test_requests_past_the_lanes_wait_without_starting() -> None:
    started: list[str] = []
    release = False

    def work(name: str) -> Generator[None, None, str]:
        started.append(name)
        while not release:
            yield
        return name

    offload = Offload(threads=1)
    one = asyncio.create_task(offload.sliced(work("first")))
    two = asyncio.create_task(offload.sliced(work("second")))
    for _ in range(5):
        await asyncio.sleep(0)
    # Slices of the first ran on several loop turns; the second, past the one lane, waits
    # without having started (without lanes it would share the turns).
    assert started == ["first"] and offload.slices >= 2
    release = True
    assert await asyncio.gather(one, two) == ["first", "second"]
    assert started == ["first", "second"]
    offload.close()
