"""OTLP partial success: invalid spans are counted and explained, the valid ones are stored."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from otlp_testkit import (
    DAY_NS,
    HOUR_NS,
    JSON,
    PROTOBUF,
    SpanSpec,
    decode_export_response,
    new_span_id,
    new_trace_id,
    now_ns,
    span_json,
    stored_span_ids,
    traces_json,
    traces_pb,
)

# A 16-byte id in base64, as a sender that misreads the OTLP JSON spec would send it.
BASE64_TRACE_ID = "W47/95gDgQPSabYzgT/GDA=="


def _span(name: str, *, age_ns: int = 0, trace_id: str | None = None) -> SpanSpec:
    start = now_ns() - age_ns
    return SpanSpec(trace_id or new_trace_id(), new_span_id(), name, start, start + 1_000_000)


def _valid_spans(trace_id: str) -> list[SpanSpec]:
    return [
        _span("now", trace_id=trace_id),
        # Within the 7-day trace retention: an old partition is created on demand.
        _span("three days old", trace_id=trace_id, age_ns=3 * DAY_NS),
        # Up to a day ahead is tolerated (clock skew).
        _span("from tomorrow", trace_id=trace_id, age_ns=-20 * HOUR_NS),
    ]


def _invalid_spans(trace_id: str) -> list[tuple[SpanSpec, str]]:
    """Each invalid span with a fragment its rejection message must contain."""
    short_trace = _span("short trace id", trace_id=trace_id)
    short_trace.trace_id = trace_id[:30]
    zero_trace = _span("zero trace id")
    zero_trace.trace_id = "0" * 32
    zero_span = _span("zero span id", trace_id=trace_id)
    zero_span.span_id = "0" * 16
    backwards = _span("ends before it starts", trace_id=trace_id)
    backwards.end_ns = backwards.start_ns - 1
    future = _span("two days ahead", trace_id=trace_id, age_ns=-2 * DAY_NS)
    ancient = _span("eight days old", trace_id=trace_id, age_ns=8 * DAY_NS)
    return [
        (short_trace, "traceId"),
        (zero_trace, "traceId is all zeros"),
        (zero_span, "spanId is all zeros"),
        (backwards, "endTimeUnixNano is before startTimeUnixNano"),
        (future, "future"),
        (ancient, "retention"),
    ]


async def _post_json(client: httpx.AsyncClient, document: dict[str, Any]) -> tuple[int, str]:
    response = await client.post("/v1/traces", json=document)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert set(body) == {"partialSuccess"}
    partial = body["partialSuccess"]
    # proto3 JSON writes int64 as a string.
    return int(partial["rejectedSpans"]), partial["errorMessage"]


async def _post_protobuf(client: httpx.AsyncClient, spans: list[SpanSpec]) -> tuple[int, str]:
    response = await client.post(
        "/v1/traces",
        content=traces_pb(spans).SerializeToString(),
        headers={"content-type": PROTOBUF},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    answer = decode_export_response(response.content)
    assert answer.HasField("partial_success")
    return answer.partial_success.rejected_spans, answer.partial_success.error_message


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
async def test_mixed_batch_stores_the_valid_spans(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str, encoding: str
) -> None:
    trace_id = new_trace_id()
    valid = _valid_spans(trace_id)
    invalid = _invalid_spans(trace_id)
    spans = [valid[0], invalid[0][0], valid[1], *(span for span, _ in invalid[1:]), valid[2]]
    if encoding == "json":
        rejected, message = await _post_json(client, traces_json(spans))
    else:
        rejected, message = await _post_protobuf(client, spans)
    assert rejected == len(invalid)
    # The message lists the first few reasons, naming each span, and counts the rest.
    assert "span 'short trace id'" in message
    assert "traceId" in message
    assert message.endswith("; and 1 more")
    stored = await stored_span_ids(db, project_name, [trace_id, "0" * 32])
    assert stored == sorted(span.span_id for span in valid)


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
@pytest.mark.parametrize(
    "case", range(6), ids=lambda index: _invalid_spans("0" * 32)[index][0].name
)
async def test_each_rejection_says_why(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    project_name: str,
    encoding: str,
    case: int,
) -> None:
    trace_id = new_trace_id()
    good = _span("good", trace_id=trace_id)
    bad, reason = _invalid_spans(trace_id)[case]
    if encoding == "json":
        rejected, message = await _post_json(client, traces_json([bad, good]))
    else:
        rejected, message = await _post_protobuf(client, [bad, good])
    assert rejected == 1
    assert reason in message
    assert bad.name in message
    assert await stored_span_ids(db, project_name, [trace_id]) == [good.span_id]


async def test_base64_id_is_refused_by_name(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    trace_id = new_trace_id()
    good = _span("good", trace_id=trace_id)
    bad = span_json(_span("base64 ids"))
    bad["traceId"] = BASE64_TRACE_ID
    document = traces_json([good])
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    rejected, message = await _post_json(client, document)
    assert rejected == 1
    assert "traceId" in message
    assert "hex, not base64" in message
    assert await stored_span_ids(db, project_name, [trace_id]) == [good.span_id]


async def test_32_base64_characters_are_not_misread_as_hex(
    client: httpx.AsyncClient, db: asyncpg.Connection, project_name: str
) -> None:
    """Right length, wrong alphabet: refused, not decoded into some other id."""
    bad = span_json(_span("not hex"))
    bad["traceId"] = "W47/95gDgQPSabYzgT/GDAW47/95gDgQ"
    document = traces_json([])
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].append(bad)
    rejected, message = await _post_json(client, document)
    assert rejected == 1
    assert "traceId" in message
    assert "not hex" in message
    rows = await db.fetchval(
        "SELECT count(*) FROM spans s JOIN projects p ON p.id = s.project_id WHERE p.name = $1",
        project_name,
    )
    assert rows == 0


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda span: span.update(startTimeUnixNano="soon"), "startTimeUnixNano"),
        (lambda span: span.pop("startTimeUnixNano"), "startTimeUnixNano is missing"),
        (lambda span: span.update(kind="SPAN_KIND_SIDEWAYS"), "kind"),
        (lambda span: span.update(status="error"), "status"),
        (lambda span: span.update(attributes=[{"value": {"stringValue": "x"}}]), "key"),
        (lambda span: span.update(spanId=12345), "spanId"),
        (lambda span: span.update(events="not a list"), "events"),
        (lambda span: span.update(endTimeUnixNano=str(2**64 - 1)), "endTimeUnixNano"),
        (
            lambda span: span.update(attributes=[{"key": "n", "value": {"intValue": str(2**70)}}]),
            "intValue",
        ),
        (
            lambda span: span.update(events=[{"timeUnixNano": str(-(10**30)), "name": "e"}]),
            "timeUnixNano",
        ),
        (lambda span: span.update(droppedAttributesCount=2**40), "droppedAttributesCount"),
        (lambda span: span.update(kind=70000), "kind"),
        (lambda span: span.update(status={"code": 99}), "status.code"),
        (lambda span: span.update(flags=2**70), "flags"),
        (
            lambda span: span.update(attributes=[{"key": "b", "value": {"boolValue": "no"}}]),
            "boolValue",
        ),
    ],
    ids=[
        "time not a number",
        "no start",
        "unknown kind",
        "status",
        "no key",
        "id type",
        "events",
        "end out of range",
        "int over 64 bits",
        "event time out of range",
        "dropped count over int32",
        "kind out of range",
        "status code out of range",
        "flags over 64 bits",
        "bool as string",
    ],
)
async def test_malformed_span_fields_reject_only_that_span(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    project_name: str,
    mutate: Any,
    fragment: str,
) -> None:
    trace_id = new_trace_id()
    good = _span("good", trace_id=trace_id)
    bad = span_json(_span("bad", trace_id=trace_id))
    mutate(bad)
    document = traces_json([good])
    document["resourceSpans"][0]["scopeSpans"][0]["spans"].insert(0, bad)
    rejected, message = await _post_json(client, document)
    assert rejected == 1
    assert fragment in message
    assert await stored_span_ids(db, project_name, [trace_id]) == [good.span_id]


async def test_many_rejections_are_summarised(client: httpx.AsyncClient) -> None:
    spans = []
    for index in range(40):
        span = _span(f"old {index}", age_ns=30 * DAY_NS)
        spans.append(span)
    rejected, message = await _post_json(client, traces_json(spans))
    assert rejected == 40
    assert message.endswith("; and 35 more")
    assert message.count("retention") == 5


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda span: setattr(span, "kind", 70000), "kind 70000 is not a known value"),
        (lambda span: setattr(span.status, "code", 99), "status.code 99 is not a known value"),
        (lambda span: setattr(span, "end_time_unix_nano", 2**64 - 1), "endTimeUnixNano"),
    ],
    ids=["kind out of range", "status code out of range", "end out of range"],
)
async def test_out_of_range_protobuf_fields_reject_only_that_span(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    project_name: str,
    mutate: Any,
    fragment: str,
) -> None:
    trace_id = new_trace_id()
    good = _span("good", trace_id=trace_id)
    request = traces_pb([_span("bad", trace_id=trace_id), good])
    mutate(request.resource_spans[0].scope_spans[0].spans[0])
    response = await client.post(
        "/v1/traces", content=request.SerializeToString(), headers={"content-type": PROTOBUF}
    )
    assert response.status_code == 200, response.text
    answer = decode_export_response(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert fragment in answer.partial_success.error_message
    assert await stored_span_ids(db, project_name, [trace_id]) == [good.span_id]


async def test_awkward_but_valid_protobuf_values_are_stored(client: httpx.AsyncClient) -> None:
    """NUL characters and uint32 counts beyond int32 do not sink the batch."""
    span = _span("odd\x00name")
    request = traces_pb([span], scope="lib\x00rary")
    sent = request.resource_spans[0].scope_spans[0].spans[0]
    sent.trace_state = "vendor=a\x00b"
    sent.dropped_attributes_count = 2**32 - 1
    sent.dropped_events_count = 2**31
    link = sent.links.add()
    link.trace_id = bytes.fromhex(new_trace_id())
    link.span_id = bytes.fromhex(new_span_id())
    link.trace_state = "x=\x00"
    link.dropped_attributes_count = 2**32 - 1
    response = await client.post(
        "/v1/traces", content=request.SerializeToString(), headers={"content-type": PROTOBUF}
    )
    assert response.status_code == 200, response.text
    assert response.content == b""
    trace = await client.get(f"/api/v1/traces/{span.trace_id}")
    assert trace.status_code == 200, trace.text
    (stored,) = trace.json()["spans"]
    assert stored["name"] == "oddname"
    assert stored["trace_state"] == "vendor=ab"
    assert stored["scope"]["name"] == "library"
    # Saturated at what the integer columns hold.
    assert stored["dropped_attributes_count"] == 2**31 - 1
    assert stored["dropped_events_count"] == 2**31 - 1
    (stored_link,) = stored["links"]
    assert stored_link["trace_state"] == "x="
    assert stored_link["dropped_attributes_count"] == 2**31 - 1


async def test_awkward_but_valid_json_values_are_stored(client: httpx.AsyncClient) -> None:
    span = _span("odd")
    document = traces_json([span], scope="lib\x00rary")
    sent = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    sent["traceState"] = "vendor=a\x00b"
    sent["droppedAttributesCount"] = 2**32 - 1
    sent["attributes"] = [
        {"key": "flag", "value": {"boolValue": "false"}},
        {"key": "blob", "value": {"bytesValue": "AAH+"}},
        {"key": "nothing", "value": {}},
        {"key": "plain", "value": "not an AnyValue"},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
        {"key": "inf", "value": {"doubleValue": "-Infinity"}},
        {"key": "big", "value": {"intValue": str(2**63 - 1)}},
        {"key": "small", "value": {"intValue": -(2**63)}},
    ]
    response = await client.post("/v1/traces", json=document)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    trace = await client.get(f"/api/v1/traces/{span.trace_id}")
    assert trace.status_code == 200, trace.text
    (stored,) = trace.json()["spans"]
    assert stored["trace_state"] == "vendor=ab"
    assert stored["scope"]["name"] == "library"
    assert stored["dropped_attributes_count"] == 2**31 - 1
    assert stored["attributes"] == {
        "flag": False,
        "blob": "AAH+",
        "nothing": None,
        "plain": "not an AnyValue",
        "nan": "NaN",
        "inf": "-Infinity",
        "big": 2**63 - 1,
        "small": -(2**63),
    }
