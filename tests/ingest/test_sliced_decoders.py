"""Every decoder of every ingest path is sliced: OTLP JSON (traces, logs, metrics), OTLP
protobuf metrics, the native items, the metric points' series and rows, error rows, and a
flush's rollup and catalog rows.

Each runs under `Offload.sliced` on the event loop's own thread (no thread of the process
then competes with the loop for the interpreter lock; see app/ingest/offload.py), pauses
at least once per few items whatever the batch's shape (one metric of many points, many
metrics of one point), and gives the result that running it at once gives.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from otlp_testkit import new_span_id, new_trace_id, now_ns, simple_span, traces_json
from support import LoopTurns

from app.config import Settings
from app.ingest.enrich import Enricher
from app.ingest.error_groups import error_rows
from app.ingest.metric_rows import metric_point_rows_steps
from app.ingest.native import (
    decode_native_errors_steps,
    decode_native_logs_steps,
    decode_native_metrics_steps,
    decode_native_spans_steps,
)
from app.ingest.offload import Offload, Steps, drive, in_turns
from app.ingest.operations import operation_rows_steps
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_logs import decode_logs_json_steps
from app.ingest.otlp_metrics import decode_metrics_json_steps, decode_metrics_protobuf_steps
from app.ingest.otlp_traces import decode_traces_json_steps
from app.ingest.rollups import ROWS_PER_STEP, rollup_rows_steps
from app.ingest.series import SeriesRegistry
from app.ingest.store import error_parts_steps, span_parts_steps
from app.ingest.store_metrics import _redact_and_assign

DAY = 86_400 * 10**9
ITEMS = 600  # items per batch; every decoder pauses at least every 32 items


def _limits() -> DecodeLimits:
    now = now_ns()
    return DecodeLimits(now - 7 * DAY, now + DAY, max_attributes=128, max_value_chars=16_384)


def _recent(index: int) -> str:
    moment = datetime.now(UTC) - timedelta(seconds=index % 3000)
    return moment.isoformat().replace("+00:00", "Z")


def _logs_document() -> dict[str, Any]:
    now = now_ns()
    records = [
        {
            "timeUnixNano": str(now - index * 1000),
            "body": {"stringValue": f"line {index}"},
            "attributes": [{"key": "n", "value": {"intValue": str(index)}}],
        }
        for index in range(ITEMS)
    ]
    return {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]
                },
                "scopeLogs": [{"scope": {"name": "lib"}, "logRecords": records}],
            }
        ]
    }


def _metrics_document(metrics: int, points: int) -> dict[str, Any]:
    now = now_ns()
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]
                },
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": f"queue.depth.{number}",
                                "gauge": {
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(now - point * 10**9),
                                            "asInt": str(point),
                                            "attributes": [
                                                {
                                                    "key": "queue",
                                                    "value": {"stringValue": f"q{point % 7}"},
                                                }
                                            ],
                                        }
                                        for point in range(points)
                                    ]
                                },
                            }
                            for number in range(metrics)
                        ]
                    }
                ],
            }
        ]
    }


def _metrics_protobuf(metrics: int, points: int) -> bytes:
    request = json_format.ParseDict(
        _metrics_document(metrics, points), metrics_service_pb2.ExportMetricsServiceRequest()
    )
    return request.SerializeToString()


def _native(key: str, item: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    return {key: [item(index) for index in range(ITEMS)]}


def _native_span(index: int) -> dict[str, Any]:
    return {
        "trace_id": new_trace_id(),
        "span_id": new_span_id(),
        "name": f"chat {index}",
        "service": "assistant",
        "start_time": _recent(index),
        "duration_ms": 12.5,
        "attributes": {"gen_ai.request.model": "gpt-4o"},
    }


def _native_log(index: int) -> dict[str, Any]:
    return {
        "timestamp": _recent(index),
        "level": "info",
        "message": f"line {index}",
        "service": "assistant",
    }


def _native_metric(index: int) -> dict[str, Any]:
    kind = "counter" if index % 2 else "histogram"
    return {"name": "tool.runs", "type": kind, "value": index, "attributes": {"n": index % 9}}


def _native_error(index: int) -> dict[str, Any]:
    return {
        "type": "TimeoutError",
        "message": f"call {index} timed out",
        "service": "assistant",
        "timestamp": _recent(1),
    }


def _on(decode: Callable[..., Steps[Any]], *inputs: Any) -> Callable[[], Steps[Any]]:
    """Fresh steps of `decode` over the same inputs, as often as asked."""
    return lambda: decode(*inputs)


# Each builds its inputs once, then gives steps over them.
DECODERS: dict[str, Callable[[], Callable[[], Steps[Any]]]] = {
    "otlp json traces": lambda: _on(
        decode_traces_json_steps,
        traces_json([simple_span(name=f"s{index}") for index in range(ITEMS)]),
        _limits(),
    ),
    "otlp json logs": lambda: _on(decode_logs_json_steps, _logs_document(), _limits()),
    "otlp json metrics, one metric": lambda: _on(
        decode_metrics_json_steps, _metrics_document(1, ITEMS), _limits()
    ),
    "otlp json metrics, one point each": lambda: _on(
        decode_metrics_json_steps, _metrics_document(ITEMS, 1), _limits()
    ),
    "otlp protobuf metrics, one metric": lambda: _on(
        decode_metrics_protobuf_steps, _metrics_protobuf(1, ITEMS), _limits()
    ),
    "otlp protobuf metrics, one point each": lambda: _on(
        decode_metrics_protobuf_steps, _metrics_protobuf(ITEMS, 1), _limits()
    ),
    "native spans": lambda: _on(
        decode_native_spans_steps, _native("spans", _native_span), _limits()
    ),
    "native logs": lambda: _on(decode_native_logs_steps, _native("logs", _native_log), _limits()),
    "native metrics": lambda: _on(
        decode_native_metrics_steps, _native("metrics", _native_metric), _limits(), now_ns()
    ),
    "native errors": lambda: _on(
        decode_native_errors_steps, _native("errors", _native_error), _limits(), now_ns()
    ),
}


def _counted(steps: Steps[Any], seen: dict[str, Any]) -> Steps[Any]:
    """`steps`, counting its pauses and noting the threads it runs on."""
    seen["threads"], seen["pauses"] = set(), 0
    while True:
        seen["threads"].add(threading.get_ident())
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        seen["pauses"] += 1
        yield


def _outcome(batch: Any) -> tuple[Any, ...]:
    reasons = getattr(batch, "reasons", None) or getattr(batch, "rejected", None)
    return (repr(batch.items), reasons)


@pytest.mark.parametrize("name", list(DECODERS))
async def test_every_decoder_runs_in_slices_on_the_event_loop(name: str) -> None:
    steps = DECODERS[name]()
    offload = Offload()
    seen: dict[str, Any] = {}
    try:
        batch = await offload.sliced(_counted(steps(), seen))
    finally:
        offload.close()
    assert seen["threads"] == {threading.get_ident()}  # the loop's own thread
    assert len(batch.items) == ITEMS, _outcome(batch)
    assert seen["pauses"] >= ITEMS // 32, seen["pauses"]
    assert offload.slices >= 1
    assert _outcome(batch) == _outcome(drive(steps()))


async def test_metric_series_and_rows_are_sliced_and_unchanged() -> None:
    points = drive(decode_metrics_json_steps(_metrics_document(3, ITEMS), _limits())).items
    reference = copy.deepcopy(points)
    enricher = Enricher.from_settings(Settings())
    registry = SeriesRegistry(None, 10_000)  # type: ignore[arg-type]  # no database needed
    offload = Offload()
    seen: dict[str, Any] = {}
    try:
        candidates = await offload.sliced(
            _counted(_redact_and_assign(enricher, registry, 5, points), seen)
        )
        assert seen["threads"] == {threading.get_ident()}
        assert seen["pauses"] >= 2 * len(points) // 64
        rows = await offload.sliced(_counted(metric_point_rows_steps(5, points), seen))
        assert seen["threads"] == {threading.get_ident()}
        assert seen["pauses"] >= len(points) // 64
    finally:
        offload.close()
    expected_candidates = drive(_redact_and_assign(enricher, registry, 5, reference))
    assert candidates.keys() == expected_candidates.keys()
    assert len(candidates) == 3 * 7  # three metrics, seven attribute sets each
    assert rows.rows == drive(metric_point_rows_steps(5, reference)).rows
    assert len(rows.rows) == 3 * ITEMS


def _span_rows(count: int) -> list[tuple[Any, ...]]:
    specs = [
        simple_span(name=f"op {index % 5}", age_ns=index * 7 * 10**9) for index in range(count)
    ]
    for index, spec in enumerate(specs):
        if index % 3:
            spec.attributes = {
                "gen_ai.request.model": f"m{index % 4}",
                "gen_ai.usage.input_tokens": index,
            }
    batch = drive(decode_traces_json_steps(traces_json(specs), _limits()))
    parts = drive(span_parts_steps(Enricher.from_settings(Settings()), 9, batch.items))
    return parts[0].rows


@pytest.mark.parametrize(
    ("steps_of", "rows_per_step"),
    [(rollup_rows_steps, ROWS_PER_STEP), (operation_rows_steps, ROWS_PER_STEP)],
    ids=["rollups", "operation catalog"],
)
async def test_a_flushs_derived_rows_are_computed_in_turns_of_the_loop(
    steps_of: Callable[[list[tuple[Any, ...]]], Steps[list[tuple[Any, ...]]]],
    rows_per_step: int,
) -> None:
    """The writer computes a flush's rollup and catalog rows with `in_turns`: on the loop's
    thread, pausing every few rows, the same rows as at once."""
    span_rows = _span_rows(3_000)
    seen: dict[str, Any] = {}
    rows = await in_turns(_counted(steps_of(span_rows), seen))
    assert seen["threads"] == {threading.get_ident()}
    assert seen["pauses"] >= len(span_rows) // rows_per_step
    assert sorted(map(repr, rows)) == sorted(map(repr, drive(steps_of(span_rows))))
    assert rows


async def test_in_turns_lets_the_loop_turn_between_slices() -> None:
    """25 steps of 1 ms each are at least twelve 2 ms slices: the loop turns between them."""

    def busy() -> Steps[str]:
        for _ in range(25):
            until = time.perf_counter() + 0.001
            while time.perf_counter() < until:
                pass
            yield
        return "done"

    async with LoopTurns() as loop:
        assert await in_turns(busy()) == "done"
    assert loop.turns >= 4


async def test_in_turns_stops_when_cancelled() -> None:
    steps, closed = 0, False

    def endless() -> Steps[None]:
        nonlocal steps, closed
        try:
            while True:
                steps += 1
                yield
        finally:
            closed = True

    task = asyncio.create_task(in_turns(endless()))
    for _ in range(3):
        await asyncio.sleep(0)
    assert steps > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed


def test_error_rows_made_in_steps_are_the_rows_made_at_once() -> None:
    batch = drive(decode_native_errors_steps(_native("errors", _native_error), _limits(), now_ns()))
    enricher = Enricher.from_settings(Settings())
    reference = copy.deepcopy(batch.items)
    for error in reference:
        error.attributes = enricher.redact(error.attributes)
    (part,) = drive(error_parts_steps(enricher, 4, batch.items))
    expected = error_rows(4, reference)
    assert (part.table, part.rows, part.days) == (expected.table, expected.rows, expected.days)
    assert len(part.rows) == ITEMS
