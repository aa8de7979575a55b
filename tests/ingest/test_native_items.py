"""Native items as pure functions: hostile values cost only their own item, and an item is
held to the same limits as OTLP (app/ingest/native.py, app/ingest/native_items.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from api.hostile import TIMES_OUT_OF_RANGE

from app.ingest.native import (
    NativeBatch,
    decode_native_errors_steps,
    decode_native_logs_steps,
    decode_native_metrics_steps,
    decode_native_spans_steps,
)
from app.ingest.offload import drive
from app.ingest.otlp_common import DecodeLimits

NOW = time.time_ns()
DAY = 86_400 * 1_000_000_000
LIMITS = DecodeLimits(
    oldest_unix_nano=NOW - 7 * DAY,
    newest_unix_nano=NOW + DAY,
    max_attributes=8,
    max_value_chars=32,
    retention_label="7d retention",
)
NOW_TEXT = datetime.fromtimestamp(NOW / 1e9, tz=UTC).isoformat()


def span(**overrides: Any) -> dict[str, Any]:
    item = {
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "eee19b7ec3c1b174",
        "name": "op",
        "service": "svc",
        "start_time": NOW_TEXT,
        "duration_ms": 5,
    }
    return {**item, **overrides}


def log(**overrides: Any) -> dict[str, Any]:
    return {"timestamp": NOW_TEXT, "message": "m", "service": "svc", **overrides}


def metric(**overrides: Any) -> dict[str, Any]:
    return {"name": "m", "type": "gauge", "value": 1, **overrides}


def error(**overrides: Any) -> dict[str, Any]:
    return {"type": "E", "service": "svc", "timestamp": NOW_TEXT, **overrides}


def decode(key: str, items: list[dict[str, Any]]) -> NativeBatch:
    document = {key: items}
    if key == "spans":
        return drive(decode_native_spans_steps(document, LIMITS))
    if key == "logs":
        return drive(decode_native_logs_steps(document, LIMITS))
    if key == "metrics":
        return drive(decode_native_metrics_steps(document, LIMITS, NOW))
    return drive(decode_native_errors_steps(document, LIMITS, NOW))


MAKERS = {"spans": span, "logs": log, "metrics": metric, "errors": error}
TIME_FIELD = {
    "spans": "start_time",
    "logs": "timestamp",
    "metrics": "timestamp",
    "errors": "timestamp",
}


def only_first_rejected(batch: NativeBatch, *words: str) -> str:
    assert batch.indexes == [1], batch.reasons
    assert [reason["index"] for reason in batch.reasons] == [0]
    found = batch.reasons[0]["reason"]
    for word in words:
        assert word in found, found
    return found


def nested(depth: int, leaf: Any = 1) -> Any:
    """`depth` maps, alternating with lists, around `leaf`."""
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@pytest.mark.parametrize("key", MAKERS)
@pytest.mark.parametrize("moment", [*TIMES_OUT_OF_RANGE, 1e300, -1])
def test_times_out_of_range_reject_their_item(key: str, moment: object) -> None:
    make = MAKERS[key]
    batch = decode(key, [make(**{TIME_FIELD[key]: moment}), make()])
    only_first_rejected(batch, TIME_FIELD[key])


@pytest.mark.parametrize("duration", [1e17, 1e308, "Infinity", "NaN", -1])
def test_durations_past_any_span_reject_their_item(duration: object) -> None:
    batch = decode("spans", [span(duration_ms=duration), span()])
    only_first_rejected(batch, "duration_ms")


def test_an_end_past_the_skew_rejects_its_item_not_the_batch() -> None:
    batch = decode("spans", [span(end_time="2999-01-01T00:00:00Z"), span()])
    only_first_rejected(batch, "end_time", "future")
    batch = decode("spans", [span(duration_ms=9e11), span()])  # 28 years
    only_first_rejected(batch, "duration_ms", "future")


def test_an_event_time_out_of_range_rejects_its_span() -> None:
    batch = decode("spans", [span(events=[{"name": "e", "time": "now+9999999w"}]), span()])
    only_first_rejected(batch, "events.0.time", "out of range")


@pytest.mark.parametrize("key", MAKERS)
@pytest.mark.parametrize("depth", [LIMITS.max_value_depth + 1, 300])
def test_attributes_nested_too_deep_reject_their_item(key: str, depth: int) -> None:
    make = MAKERS[key]
    batch = decode(key, [make(attributes={"deep": nested(depth)}), make()])
    only_first_rejected(batch, "attributes", "'deep'", "nested deeper than 16 levels")


@pytest.mark.parametrize("key", MAKERS)
def test_attributes_nested_to_the_limit_are_kept(key: str) -> None:
    make = MAKERS[key]
    batch = decode(key, [make(attributes={"deep": nested(LIMITS.max_value_depth, "leaf")})])
    assert batch.rejected == 0, batch.reasons


def test_event_attributes_and_stacks_are_bounded_too() -> None:
    deep_event = span(
        events=[{"name": "e", "attributes": {"x": nested(LIMITS.max_value_depth + 1)}}]
    )
    only_first_rejected(decode("spans", [deep_event, span()]), "events.0.attributes")
    deep_stack = error(stack=[nested(LIMITS.max_value_depth + 1)])
    only_first_rejected(decode("errors", [deep_stack, error()]), "stack", "nested deeper")


def test_values_are_stored_as_otlp_would_store_them() -> None:
    long_text = "x" * 100
    attributes = {
        "long": long_text,
        "nested": {"inner": [long_text, "a\x00b"]},
        "k\x00ey": "v",
        "huge": 2**70,
        "fine": 2**62,
    }
    [record] = decode("spans", [span(attributes=attributes, status_message=long_text)]).items
    assert record.attributes == {
        "long": "x" * 32,
        "nested": {"inner": ["x" * 32, "ab"]},
        "key": "v",
        "huge": str(2**70),
        "fine": 2**62,
    }
    assert record.status_message == "x" * 32
    [event] = decode("errors", [error(stack="s" * 100, attributes={"a": long_text})]).items
    assert event.attributes == {"a": "x" * 32}


def test_events_past_the_limit_are_dropped_and_counted() -> None:
    events = [{"name": f"e{number}"} for number in range(LIMITS.max_events + 7)]
    [record] = decode("spans", [span(events=events)]).items
    assert [event["name"] for event in record.events] == [
        f"e{number}" for number in range(LIMITS.max_events)
    ]
    assert record.dropped_events_count == 7


def test_an_item_with_several_problems_reports_all_of_them() -> None:
    bad = span(
        trace_id="xyz",
        span_id="0000000000000000",
        kind="sideways",
        start_time="soon",
        service="",
        attributes={"deep": nested(LIMITS.max_value_depth + 1)},
    )
    found = only_first_rejected(decode("spans", [bad, span()]))
    for field in ("trace_id", "span_id", "kind", "start_time", "service", "attributes"):
        assert f"{field}:" in found, found
    assert "Value error" not in found


def test_problems_found_after_the_fields_are_all_reported_too() -> None:
    old = datetime.fromtimestamp((NOW - 30 * DAY) / 1e9, tz=UTC).isoformat()
    batch = decode("spans", [span(start_time=old, end_time="2999-01-01T00:00:00Z"), span()])
    found = only_first_rejected(batch)
    assert "start_time" in found and "retention" in found
    assert "end_time" in found and "future" in found
    counter = metric(type="counter", value=-1, timestamp="2999-01-01T00:00:00Z")
    found = only_first_rejected(decode("metrics", [counter, metric()]))
    assert "negative" in found and "future" in found
