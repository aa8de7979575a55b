"""POST /v1/traces over plain HTTP: the spec example and the JSON/protobuf encoding variants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from otlp_testkit import (
    JSON,
    PROTOBUF,
    SpanSpec,
    decode_export_response,
    gzip_bytes,
    new_span_id,
    new_trace_id,
    now_ns,
    parse_time,
    raw_deflate_bytes,
    time_of,
    traces_json,
    traces_pb,
    zlib_bytes,
)
from support import load_example, shift_to_now

EXAMPLE_TRACE_ID = "5b8efff798038103d269b633813fc60c"


def _shifted_example() -> tuple[dict[str, Any], int]:
    start = now_ns() - 60 * 1_000_000_000
    return shift_to_now(load_example("trace.json"), start), start


def _example_span(document: dict[str, Any]) -> dict[str, Any]:
    key = "resourceSpans" if "resourceSpans" in document else "resource_spans"
    resource_spans = document[key][0]
    scope_key = "scopeSpans" if "scopeSpans" in resource_spans else "scope_spans"
    return resource_spans[scope_key][0]["spans"][0]


def _expected_example_trace(start_ns: int) -> dict[str, Any]:
    span = {
        "span_id": "eee19b7ec3c1b174",
        # The example's parent is not in the batch: kept as sent, and the span is the root.
        "parent_span_id": "eee19b7ec3c1b173",
        "name": "I'm a server span",
        "service": "my.service",
        "kind": "server",
        "duration_ms": 1000.0,
        "status": "unset",
        "status_message": "",
        "attributes": {"my.span.attr": "some value"},
        "resource": {"service.name": "my.service"},
        "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": {"my.scope.attribute": "some scope attribute"},
            "schema_url": "",
        },
        "events": [],
        "links": [],
    }
    return {
        "trace_id": EXAMPLE_TRACE_ID,
        "root_service": "my.service",
        "root_name": "I'm a server span",
        "duration_ms": 1000.0,
        "span_count": 1,
        "error_count": 0,
        "services": ["my.service"],
        "start": time_of(start_ns),
        "span": span,
    }


async def _read_trace(client: httpx.AsyncClient, trace_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/traces/{trace_id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def _assert_example_trace(trace: dict[str, Any], start_ns: int) -> None:
    expected = _expected_example_trace(start_ns)
    for field in ("trace_id", "root_service", "root_name", "span_count", "error_count", "services"):
        assert trace[field] == expected[field], field
    assert trace["duration_ms"] == pytest.approx(expected["duration_ms"])
    assert parse_time(trace["start_time"]) == expected["start"]
    (span,) = trace["spans"]
    for field, value in expected["span"].items():
        assert span[field] == value, field
    assert parse_time(span["start_time"]) == expected["start"]
    assert parse_time(span["end_time"]) == time_of(start_ns + 1_000_000_000)


# ---------------------------------------------------------------- the spec example


async def test_example_as_sent_is_rejected_for_retention(client: httpx.AsyncClient) -> None:
    """Its 2018 timestamps are far older than 7 days: 200 with partial success, nothing kept."""
    response = await client.post("/v1/traces", json=load_example("trace.json"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert set(body) == {"partialSuccess"}
    assert int(body["partialSuccess"]["rejectedSpans"]) == 1
    message = body["partialSuccess"]["errorMessage"]
    assert "retention" in message
    assert "7d" in message
    assert "2018-12-13" in message
    assert "EEE19B7EC3C1B174" in message
    missing = await client.get(f"/api/v1/traces/{EXAMPLE_TRACE_ID}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["error"]["code"] == "not_found"


async def test_example_as_sent_in_protobuf_is_rejected_for_retention(
    client: httpx.AsyncClient,
) -> None:
    document = load_example("trace.json")
    span = _example_span(document)
    request = traces_pb(
        [
            SpanSpec(
                trace_id=span["traceId"],
                span_id=span["spanId"],
                name=span["name"],
                start_ns=int(span["startTimeUnixNano"]),
                end_ns=int(span["endTimeUnixNano"]),
            )
        ]
    )
    response = await client.post(
        "/v1/traces", content=request.SerializeToString(), headers={"content-type": PROTOBUF}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    answer = decode_export_response(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "retention" in answer.partial_success.error_message


def _identity(document: dict[str, Any]) -> dict[str, Any]:
    return document


def _lowercase_ids(document: dict[str, Any]) -> dict[str, Any]:
    span = _example_span(document)
    for key in ("traceId", "spanId", "parentSpanId"):
        span[key] = span[key].lower()
    return document


def _int64_as_numbers(document: dict[str, Any]) -> dict[str, Any]:
    span = _example_span(document)
    for key in ("startTimeUnixNano", "endTimeUnixNano"):
        span[key] = int(span[key])
    return document


def _enum_names(document: dict[str, Any]) -> dict[str, Any]:
    span = _example_span(document)
    span["kind"] = "SPAN_KIND_SERVER"
    span["status"] = {"code": "STATUS_CODE_UNSET"}
    return document


def _unknown_fields(document: dict[str, Any]) -> dict[str, Any]:
    document["fromTheFuture"] = {"nested": [1, 2, 3]}
    resource_spans = document["resourceSpans"][0]
    resource_spans["unknownField"] = "x"
    resource_spans["resource"]["entityRefs"] = [{"type": "service"}]
    resource_spans["scopeSpans"][0]["somethingElse"] = 42
    span = _example_span(document)
    span["newSpanField"] = {"value": True}
    span["attributes"][0]["value"]["extra"] = "ignored"
    return document


def _snake_case(document: dict[str, Any]) -> dict[str, Any]:
    resource_spans = document.pop("resourceSpans")
    for block in resource_spans:
        block["scope_spans"] = block.pop("scopeSpans")
        for scope_block in block["scope_spans"]:
            for span in scope_block["spans"]:
                for camel, snake in (
                    ("traceId", "trace_id"),
                    ("spanId", "span_id"),
                    ("parentSpanId", "parent_span_id"),
                    ("startTimeUnixNano", "start_time_unix_nano"),
                    ("endTimeUnixNano", "end_time_unix_nano"),
                ):
                    span[snake] = span.pop(camel)
                for attribute in span["attributes"]:
                    attribute["value"] = {"string_value": attribute["value"]["stringValue"]}
    document["resource_spans"] = resource_spans
    return document


def _json_body(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


VARIANTS: list[tuple[str, str, str | None, Callable[[bytes], bytes], Callable[..., Any]]] = [
    ("plain", JSON, None, bytes, _identity),
    ("charset", "application/json; charset=utf-8", None, bytes, _identity),
    ("media type case", "Application/JSON", None, bytes, _identity),
    ("lowercase ids", JSON, None, bytes, _lowercase_ids),
    ("int64 as numbers", JSON, None, bytes, _int64_as_numbers),
    ("enum names", JSON, None, bytes, _enum_names),
    ("unknown fields", JSON, None, bytes, _unknown_fields),
    ("snake_case keys", JSON, None, bytes, _snake_case),
    ("gzip", JSON, "gzip", gzip_bytes, _identity),
    ("gzip uppercase", JSON, "GZIP", gzip_bytes, _identity),
    (
        "gzip members",
        JSON,
        "gzip",
        lambda body: gzip_bytes(body[:50]) + gzip_bytes(body[50:]),
        _identity,
    ),
    ("deflate (zlib)", JSON, "deflate", zlib_bytes, _identity),
    ("deflate (raw)", JSON, "deflate", raw_deflate_bytes, _identity),
    ("identity", JSON, "identity", bytes, _identity),
]


@pytest.mark.parametrize(
    ("content_type", "encoding", "compress", "transform"),
    [variant[1:] for variant in VARIANTS],
    ids=[variant[0] for variant in VARIANTS],
)
async def test_example_variants_round_trip(
    client: httpx.AsyncClient,
    content_type: str,
    encoding: str | None,
    compress: Callable[[bytes], bytes],
    transform: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    document, start = _shifted_example()
    body = compress(_json_body(transform(copy.deepcopy(document))))
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    response = await client.post("/v1/traces", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    assert response.json() == {}
    # Ids are accepted in any case on the read side too.
    trace = await _read_trace(client, EXAMPLE_TRACE_ID.upper())
    _assert_example_trace(trace, start)


async def test_example_round_trip_in_protobuf(client: httpx.AsyncClient) -> None:
    document, start = _shifted_example()
    span = _example_span(document)
    request = traces_pb(
        [
            SpanSpec(
                trace_id=span["traceId"],
                span_id=span["spanId"],
                parent_span_id=span["parentSpanId"],
                name=span["name"],
                kind=2,
                start_ns=int(span["startTimeUnixNano"]),
                end_ns=int(span["endTimeUnixNano"]),
                attributes={"my.span.attr": "some value"},
            )
        ],
        service="my.service",
        scope="my.library",
    )
    request.resource_spans[0].scope_spans[0].scope.version = "1.0.0"
    scope = request.resource_spans[0].scope_spans[0].scope
    attribute = scope.attributes.add()
    attribute.key = "my.scope.attribute"
    attribute.value.string_value = "some scope attribute"
    response = await client.post(
        "/v1/traces",
        content=gzip_bytes(request.SerializeToString()),
        headers={"content-type": PROTOBUF, "content-encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    answer = decode_export_response(response.content)
    assert not answer.HasField("partial_success")
    _assert_example_trace(await _read_trace(client, EXAMPLE_TRACE_ID), start)


# ---------------------------------------------------------------- values and fields


async def test_protobuf_values_of_every_kind(client: httpx.AsyncClient) -> None:
    trace_id, root_id, child_id = new_trace_id(), new_span_id(), new_span_id()
    start = now_ns()
    attributes = {
        "text": "héllo",
        "count": 42,
        "big": 2**62,
        "negative": -7,
        "ratio": 0.25,
        "flag": True,
        "off": False,
        "tags": ["a", "b"],
        "numbers": [1, 2, 3],
        "floats": [0.5, 1.5],
        "bools": [True, False],
        "mixed": ["x", 1, 2.5, False],
        "map": {"inner": "v", "depth": {"n": 1}},
        "blob": b"\x00\x01\xfe",
        "empty": "",
    }
    request = traces_pb(
        [
            SpanSpec(trace_id, root_id, "root", start, start + 10_000_000, kind=2),
            SpanSpec(
                trace_id,
                child_id,
                "child",
                start + 1_000_000,
                start + 3_500_000,
                parent_span_id=root_id,
                kind=3,
                attributes=attributes,
                status_code=2,
                status_message="upstream said no",
            ),
        ],
        service="assistant-api",
    )
    response = await client.post(
        "/v1/traces",
        content=request.SerializeToString(),
        headers={"content-type": "application/protobuf"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    assert response.content == b""

    trace = await _read_trace(client, trace_id)
    assert trace["span_count"] == 2
    assert trace["error_count"] == 1
    assert trace["root_name"] == "root"
    assert trace["root_service"] == "assistant-api"
    assert trace["duration_ms"] == pytest.approx(10.0)
    root, child = trace["spans"]
    assert (root["span_id"], root["parent_span_id"], root["kind"]) == (root_id, None, "server")
    assert (child["span_id"], child["parent_span_id"], child["kind"]) == (
        child_id,
        root_id,
        "client",
    )
    assert child["duration_ms"] == pytest.approx(2.5)
    assert (child["status"], child["status_message"]) == ("error", "upstream said no")
    assert (root["status"], root["status_message"]) == ("unset", "")
    assert child["attributes"] == {
        **attributes,
        # jsonb has no bytes: the OTLP JSON form (base64) is what comes back.
        "blob": "AAH+",
    }
    assert isinstance(child["attributes"]["count"], int)
    assert isinstance(child["attributes"]["ratio"], float)


async def test_enum_names_for_kind_and_error_status(client: httpx.AsyncClient) -> None:
    trace_id, span_id = new_trace_id(), new_span_id()
    start = now_ns()
    document = traces_json([SpanSpec(trace_id, span_id, "call", start, start + 2_000_000)])
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["kind"] = "SPAN_KIND_CONSUMER"
    span["status"] = {"code": "STATUS_CODE_ERROR", "message": "queue closed"}
    response = await client.post("/v1/traces", json=document)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    trace = await _read_trace(client, trace_id)
    (stored,) = trace["spans"]
    assert (stored["kind"], stored["status"], stored["status_message"]) == (
        "consumer",
        "error",
        "queue closed",
    )
    assert trace["error_count"] == 1


async def test_json_events_links_and_dropped_counts(client: httpx.AsyncClient) -> None:
    trace_id, span_id, linked_trace, linked_span = (
        new_trace_id(),
        new_span_id(),
        new_trace_id(),
        new_span_id(),
    )
    start = now_ns()
    document = traces_json([SpanSpec(trace_id, span_id, "work", start, start + 4_000_000)])
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceState"] = "vendor=1"
    span["droppedAttributesCount"] = 3
    span["events"] = [
        {
            "timeUnixNano": str(start + 1_000_000),
            "name": "retry",
            "attributes": [{"key": "attempt", "value": {"intValue": "2"}}],
            "droppedAttributesCount": 1,
        }
    ]
    span["links"] = [
        {
            "traceId": linked_trace.upper(),
            "spanId": linked_span,
            "traceState": "a=b",
            "attributes": [{"key": "link.reason", "value": {"stringValue": "batch"}}],
        }
    ]
    response = await client.post("/v1/traces", json=document)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    (stored,) = (await _read_trace(client, trace_id))["spans"]
    assert stored["trace_state"] == "vendor=1"
    assert stored["dropped_attributes_count"] == 3
    (event,) = stored["events"]
    assert event["name"] == "retry"
    assert event["attributes"] == {"attempt": 2}
    assert event["time_unix_nano"] == start + 1_000_000
    assert parse_time(event["time"]) == time_of(start + 1_000_000)
    assert event["dropped_attributes_count"] == 1
    (link,) = stored["links"]
    assert (link["trace_id"], link["span_id"], link["trace_state"]) == (
        linked_trace,
        linked_span,
        "a=b",
    )
    assert link["attributes"] == {"link.reason": "batch"}


async def test_empty_requests_are_accepted(client: httpx.AsyncClient) -> None:
    for body in (b"{}", b'{"resourceSpans": []}'):
        response = await client.post("/v1/traces", content=body, headers={"content-type": JSON})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == JSON
        assert response.json() == {}
    response = await client.post("/v1/traces", content=b"", headers={"content-type": PROTOBUF})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    assert response.content == b""


async def test_one_request_many_resources(client: httpx.AsyncClient) -> None:
    trace_id = new_trace_id()
    start = now_ns()
    first = traces_json(
        [SpanSpec(trace_id, new_span_id(), "front", start, start + 9_000_000, kind=2)],
        service="frontend",
    )
    second = traces_json(
        [SpanSpec(trace_id, new_span_id(), "back", start + 1_000, start + 5_000_000)],
        service="backend",
    )
    document = {"resourceSpans": first["resourceSpans"] + second["resourceSpans"]}
    response = await client.post("/v1/traces", json=document)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    trace = await _read_trace(client, trace_id)
    assert trace["services"] == ["backend", "frontend"]
    assert [span["service"] for span in trace["spans"]] == ["frontend", "backend"]
    assert [span["resource"] for span in trace["spans"]] == [
        {"service.name": "frontend"},
        {"service.name": "backend"},
    ]
