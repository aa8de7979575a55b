"""Hostile bodies on the real server: a bad item is rejected alone, with a reason; native
items are held to the limits OTLP applies; nothing answers 500."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from api.hostile import (
    TIME_FIELDS,
    TIMES_OUT_OF_RANGE,
    error_message,
    native_item,
    nested,
    now_text,
    only_first_rejected,
)
from otlp_testkit import SpanSpec, new_span_id, new_trace_id, traces_json, traces_pb

KINDS = list(TIME_FIELDS)


async def post(client: httpx.AsyncClient, kind: str, *items: dict) -> httpx.Response:
    return await client.post(f"/api/v1/ingest/{kind}", json={kind: list(items)})


@pytest.mark.parametrize("kind", KINDS)
async def test_times_out_of_range_reject_only_their_item(
    client: httpx.AsyncClient, kind: str
) -> None:
    for moment in TIMES_OUT_OF_RANGE:
        bad = native_item(kind, **{TIME_FIELDS[kind]: moment})
        response = await post(client, kind, bad, native_item(kind))
        reason = only_first_rejected(response, TIME_FIELDS[kind])
        assert "out of range" in reason or "too long" in reason or "invalid duration" in reason


@pytest.mark.parametrize("duration", [1e17, 1e308, "Infinity"])
async def test_span_durations_past_any_span_reject_only_their_item(
    client: httpx.AsyncClient, duration: object
) -> None:
    response = await post(client, "spans", native_item("spans", duration_ms=duration),
                          native_item("spans"))  # fmt: skip
    only_first_rejected(response, "duration_ms")


async def test_an_end_time_in_2999_rejects_that_span_not_the_batch(
    client: httpx.AsyncClient,
) -> None:
    good = native_item("spans")
    response = await post(client, "spans", native_item("spans", end_time="2999-01-01T00:00:00Z"),
                          good)  # fmt: skip
    only_first_rejected(response, "end_time", "future")
    stored = await client.get(f"/api/v1/traces/{good['trace_id']}")
    assert stored.status_code == 200, stored.text


@pytest.mark.parametrize("kind", KINDS)
async def test_attributes_nested_hundreds_of_levels_reject_only_their_item(
    client: httpx.AsyncClient, kind: str
) -> None:
    response = await post(client, kind, native_item(kind, attributes={"deep": nested(300)}),
                          native_item(kind))  # fmt: skip
    only_first_rejected(response, "attributes", "'deep'", "nested deeper than 16 levels")


async def test_event_attributes_nested_too_deep_reject_their_span(
    client: httpx.AsyncClient,
) -> None:
    deep = native_item("spans", events=[{"name": "e", "attributes": {"deep": nested(300)}}])
    response = await post(client, "spans", deep, native_item("spans"))
    only_first_rejected(response, "events.0.attributes", "nested deeper")


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
async def test_otlp_values_nested_too_deep_reject_only_their_span(
    client: httpx.AsyncClient, encoding: str
) -> None:
    now = time.time_ns()
    deep = SpanSpec(new_trace_id(), new_span_id(), "deep", now - 1000, now,
                    attributes={"deep": nested(20)})  # fmt: skip
    good = SpanSpec(new_trace_id(), new_span_id(), "good", now - 1000, now)
    if encoding == "json":
        response = await client.post("/v1/traces", json=traces_json([deep, good]))
        partial = response.json()["partialSuccess"]
        assert (partial["rejectedSpans"], response.status_code) == ("1", 200), response.text
        assert "nested deeper than 16 levels" in partial["errorMessage"]
    else:
        body = traces_pb([deep, good]).SerializeToString()
        response = await client.post(
            "/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
        )
        assert response.status_code == 200, response.text
    assert (await client.get(f"/api/v1/traces/{good.trace_id}")).status_code == 200
    assert (await client.get(f"/api/v1/traces/{deep.trace_id}")).status_code == 404


async def test_native_attribute_values_are_truncated_as_otlp_truncates_them(
    client: httpx.AsyncClient,
) -> None:
    item = native_item("spans", attributes={"huge": "x" * 100_000, "nested": ["y" * 20_000]})
    response = await post(client, "spans", item)
    assert response.json() == {"accepted": 1, "rejected": []}
    span = (await client.get(f"/api/v1/traces/{item['trace_id']}")).json()["spans"][0]
    # TELEMETRY_MAX_ATTRIBUTE_VALUE_CHARS, the default 16384, as for OTLP values.
    assert span["attributes"] == {"huge": "x" * 16384, "nested": ["y" * 16384]}


async def test_native_events_past_the_limit_are_dropped_and_counted(
    client: httpx.AsyncClient,
) -> None:
    item = native_item("spans", events=[{"name": f"e{number}"} for number in range(200)])
    assert (await post(client, "spans", item)).json()["accepted"] == 1
    span = (await client.get(f"/api/v1/traces/{item['trace_id']}")).json()["spans"][0]
    assert len(span["events"]) == 128
    assert span["dropped_events_count"] == 72


async def test_a_native_item_with_several_problems_reports_all_of_them(
    client: httpx.AsyncClient,
) -> None:
    bad = native_item("spans", trace_id="xyz", span_id="0" * 16, kind="sideways",
                      start_time="soon", attributes={"deep": nested(30)})  # fmt: skip
    reason = only_first_rejected(await post(client, "spans", bad, native_item("spans")))
    for field in ("trace_id", "span_id", "kind", "start_time", "attributes"):
        assert f"{field}:" in reason, reason


async def test_native_content_type_message_names_only_json(client: httpx.AsyncClient) -> None:
    for content_type in ("application/x-protobuf", "text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        response = await client.post("/api/v1/ingest/spans", content=b"{}", headers=headers)
        message = error_message(response, 415, "send application/json")
        assert "protobuf" not in message.split("send", 1)[1], message


async def test_huge_token_counts_do_not_sink_the_batch(client: httpx.AsyncClient) -> None:
    # Two spans of 2**62 tokens each: their per-minute rollup once overflowed a bigint and
    # the whole batch was refused. Counts past any model call are now ignored instead.
    model = f"hostile-{uuid.uuid4().hex[:8]}"
    attributes = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": 2**62}
    items = [native_item("spans", kind="client", attributes=attributes) for _ in range(2)]
    response = await post(client, "spans", *items, native_item("spans"))
    assert response.json() == {"accepted": 3, "rejected": []}, response.text
    span = (await client.get(f"/api/v1/traces/{items[0]['trace_id']}")).json()["spans"][0]
    assert span["gen_ai"]["input_tokens"] is None


async def test_huge_metric_values_are_stored_and_their_overflowing_sums_left_out(
    client: httpx.AsyncClient,
) -> None:
    name = f"hostile.huge.{uuid.uuid4().hex[:8]}"
    moment = now_text()
    values = [
        native_item("metrics", name=name, value=1.7e308, timestamp=moment, attributes={"n": n})
        for n in range(2)
    ]  # two series whose sum in one step is past the largest double
    assert (await post(client, "metrics", *values)).json()["accepted"] == 2
    for agg in ("sum", "avg", "max"):
        response = await client.get("/api/v1/metrics/query", params={"name": name, "agg": agg})
        assert response.status_code == 200, response.text
    found = await client.get("/api/v1/metrics/query", params={"name": name, "agg": "max"})
    assert found.json()["series"][0]["points"][0][1] == 1.7e308
