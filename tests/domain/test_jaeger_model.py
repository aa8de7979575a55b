"""Traces in the Jaeger UI model, one rule at a time (the whole answers are pinned by the
golden tests in tests/api/test_jaeger_goldens.py)."""

from __future__ import annotations

from typing import Any

from app.domain.jaeger_model import (
    INVALID_LINK_WARNING,
    dependency_links,
    envelope,
    error_envelope,
    key_value,
    operations,
    references,
    span_logs,
    span_tags,
    ui_trace,
)

TRACE = "5b8efff798038103d269b633813fc60c"


def _span(**fields: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "span_id": "eee19b7ec3c1b174",
        "parent_span_id": None,
        "name": "op",
        "service": "svc",
        "kind": "internal",
        "start_time": "2026-11-23T10:00:00.000001Z",
        "duration_ms": 1.5,
        "status": "unset",
        "status_message": "",
        "attributes": {},
        "resource": {"service.name": "svc"},
        "scope": {"name": "", "version": "", "attributes": {}, "schema_url": ""},
        "events": [],
        "links": [],
        "trace_state": "",
        "gen_ai": None,
    }
    return {**span, **fields}


def test_values_take_jaegers_types() -> None:
    assert key_value("s", "x") == {"key": "s", "type": "string", "value": "x"}
    assert key_value("b", False) == {"key": "b", "type": "bool", "value": False}
    assert key_value("i", 2**53 - 1) == {"key": "i", "type": "int64", "value": 2**53 - 1}
    # Beyond JavaScript's safe integers Jaeger sends the digits as a string.
    assert key_value("i", 2**53) == {"key": "i", "type": "int64", "value": str(2**53)}
    assert key_value("i", -(2**63)) == {"key": "i", "type": "int64", "value": str(-(2**63))}
    assert key_value("f", 0.5) == {"key": "f", "type": "float64", "value": 0.5}
    assert key_value("a", ["x", 1]) == {"key": "a", "type": "string", "value": '["x",1]'}
    assert key_value("m", {"k": "ü"}) == {"key": "m", "type": "string", "value": '{"k":"ü"}'}
    assert key_value("n", None) == {"key": "n", "type": "string", "value": ""}


def test_tags_in_the_translators_order() -> None:
    span = _span(
        kind="client",
        status="error",
        status_message="boom",
        trace_state="k=v",
        attributes={"z": 1, "a": "x"},
        scope={"name": "lib", "version": "1.2", "attributes": {"not": "carried"}},
    )
    assert [(tag["key"], tag["value"]) for tag in span_tags(span)] == [
        ("otel.scope.name", "lib"),
        ("otel.scope.version", "1.2"),
        ("a", "x"),
        ("z", 1),
        ("span.kind", "client"),
        ("otel.status_code", "ERROR"),
        ("error", True),
        ("otel.status_description", "boom"),
        ("w3c.tracestate", "k=v"),
    ]
    ok = span_tags(_span(status="ok"))
    assert [tag["key"] for tag in ok] == ["span.kind", "otel.status_code"]
    assert ok[1]["value"] == "OK"


def test_genai_columns_fill_the_tags_the_span_lacks() -> None:
    genai = {
        "provider": "anthropic",
        "model": "claude-sonnet-4",
        "operation": None,
        "input_tokens": 10,
        "output_tokens": 20,
        "cache_read_input_tokens": None,
        "tool_name": None,
        "cost_usd": 0.00033,
    }
    # Attributes an instrumentation library wrote under other names (as OpenInference
    # does); the columns hold what the collector read from them.
    span = _span(attributes={"llm.model_name": "claude-sonnet-4"}, gen_ai=genai)
    tags = {tag["key"]: tag["value"] for tag in span_tags(span)}
    assert tags == {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.response.model": "claude-sonnet-4",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cost": 0.00033,
        "llm.model_name": "claude-sonnet-4",
        "span.kind": "internal",
    }
    # A key the span has is never overwritten, and a request model means no derived one.
    span = _span(
        attributes={"gen_ai.request.model": "claude-sonnet-4", "gen_ai.usage.input_tokens": "10"},
        gen_ai=genai,
    )
    tags = {tag["key"]: tag["value"] for tag in span_tags(span)}
    assert tags["gen_ai.usage.input_tokens"] == "10"
    assert "gen_ai.response.model" not in tags


def test_parent_and_links_become_references() -> None:
    trace_id = bytes.fromhex(TRACE)
    other = "0af7651916cd43dd8448eb211c80319c"
    parent = "00f067aa0ba902b7"
    span = _span(
        parent_span_id=parent,
        links=[
            {"trace_id": other, "span_id": "b7ad6b7169203331", "attributes": {}},
            {
                "trace_id": "0" * 30 + "ff",
                "span_id": "00000000000000ff",
                "attributes": {"opentracing.ref_type": "child_of"},
            },
            {"trace_id": "", "span_id": "", "attributes": {}},
            {"trace_id": "0" * 32, "span_id": "b7ad6b7169203331", "attributes": {}},
        ],
    )
    refs, warnings = references(span, trace_id)
    assert refs == [
        {"refType": "CHILD_OF", "traceID": TRACE, "spanID": parent},
        {"refType": "FOLLOWS_FROM", "traceID": other, "spanID": "b7ad6b7169203331"},
        {"refType": "CHILD_OF", "traceID": "00000000000000ff", "spanID": "00000000000000ff"},
    ]
    assert warnings == [INVALID_LINK_WARNING, INVALID_LINK_WARNING]
    # A link to the parent sets the parent reference's type instead of adding one.
    to_parent = _span(
        parent_span_id=parent, links=[{"trace_id": TRACE, "span_id": parent, "attributes": {}}]
    )
    assert references(to_parent, trace_id)[0] == [
        {"refType": "FOLLOWS_FROM", "traceID": TRACE, "spanID": parent}
    ]


def test_events_become_logs_in_time_order() -> None:
    events = [
        {"time_unix_nano": 2_000_999, "name": "exception", "attributes": {"b": 1, "a": 2}},
        {"time_unix_nano": 1_000_000, "name": "started", "attributes": {}},
        {"time_unix_nano": 3_000_000, "name": "named", "attributes": {"event": "own"}},
        {"time_unix_nano": 4_000_000, "name": "", "attributes": {"x": "y"}},
    ]
    assert span_logs(_span(events=events)) == [
        {"timestamp": 1000, "fields": [key_value("event", "started")]},
        {
            "timestamp": 2000,
            "fields": [key_value("event", "exception"), key_value("a", 2), key_value("b", 1)],
        },
        {"timestamp": 3000, "fields": [key_value("event", "own")]},
        {"timestamp": 4000, "fields": [key_value("x", "y")]},
    ]


def test_processes_are_shared_by_equal_resources() -> None:
    trace = {
        "trace_id": TRACE,
        "spans": [
            _span(span_id="0000000000000001", service="a", resource={"service.name": "a"}),
            _span(span_id="0000000000000002", service="b", resource={"host": "h", "z": 1}),
            _span(span_id="0000000000000003", service="a", resource={"service.name": "a"}),
            _span(span_id="0000000000000004", service="b", resource={"host": "other"}),
        ],
    }
    answer = ui_trace(trace)
    assert [span["processID"] for span in answer["spans"]] == ["p1", "p2", "p1", "p3"]
    assert answer["processes"] == {
        "p1": {"serviceName": "a", "tags": []},
        "p2": {"serviceName": "b", "tags": [key_value("host", "h"), key_value("z", 1)]},
        "p3": {"serviceName": "b", "tags": [key_value("host", "other")]},
    }
    first = answer["spans"][0]
    assert first["startTime"] == 1795428000000001 and first["duration"] == 1500
    assert first["warnings"] is None and answer["warnings"] is None


def test_durations_truncate_to_whole_microseconds() -> None:
    # get_trace gives nanoseconds / 1e6; Jaeger truncates nanoseconds to microseconds.
    for duration_ms, micros in (
        (0.000999, 0),
        (0.123, 123),
        (1.001999, 1001),
        (86400000, 8.64e10),
    ):
        trace = {"trace_id": TRACE, "spans": [_span(duration_ms=duration_ms)]}
        assert ui_trace(trace)["spans"][0]["duration"] == micros


def test_envelopes() -> None:
    assert envelope(["a"], total=1) == {
        "data": ["a"],
        "total": 1,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }
    assert error_envelope(404, "trace not found") == {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": 404, "msg": "trace not found"}],
    }
    assert operations([("get", "server"), ("tick", "unspecified")]) == [
        {"name": "get", "spanKind": "server"},
        {"name": "tick", "spanKind": ""},
    ]
    assert dependency_links([("a", "b", 3)]) == [{"parent": "a", "child": "b", "callCount": 3}]
