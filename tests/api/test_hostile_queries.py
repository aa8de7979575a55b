"""Hostile query parameters on the real server: checked before SQL, answered 400 in the one
error shape naming the parameter, or answered normally; never 500."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import pytest
from api.hostile import READ_PATHS, TIMES_OUT_OF_RANGE, error_message, native_item

METRIC = f"hostile.metric.{uuid.uuid4().hex[:8]}"


async def seed_metric(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/ingest/metrics",
        json={"metrics": [native_item("metrics", name=METRIC, attributes={"n": 200})]},
    )
    assert response.json()["accepted"] == 1, response.text


@pytest.mark.parametrize("path", READ_PATHS)
async def test_times_out_of_range_are_400_naming_the_parameter(
    client: httpx.AsyncClient, path: str
) -> None:
    for moment in TIMES_OUT_OF_RANGE:
        for parameter in ("start", "end"):
            response = await client.get(path, params={parameter: moment, "name": METRIC})
            error_message(response, 400, f"{parameter}:")


async def test_metric_steps_that_would_reach_before_year_one_are_400(
    client: httpx.AsyncClient,
) -> None:
    await seed_metric(client)
    far = {"name": METRIC, "step": "100000000w"}
    error_message(await client.get("/api/v1/metrics/query", params={**far, "start": "now-1d"}),
                  400, "step", "3650d")  # fmt: skip
    error_message(await client.get("/api/v1/metrics/query",
                                   params={**far, "start": "now-36500d"}), 400)  # fmt: skip
    longest = {"name": METRIC, "step": "3650d", "start": "1970-01-01T00:00:00Z"}
    response = await client.get("/api/v1/metrics/query", params=longest)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/api/v1/traces", "/api/v1/logs", "/api/v1/metrics/query"])
async def test_attribute_filters_of_numbers_past_64_bits_compare_as_text(
    client: httpx.AsyncClient, path: str
) -> None:
    await seed_metric(client)
    for value in ("9" * 5000, "1e99999", "-" + "1" * 4400 + ".5", str(2**70), str(-(2**63) - 1)):
        response = await client.get(path, params={"attr.n": value, "name": METRIC})
        assert response.status_code == 200, response.text
    found = await client.get("/api/v1/metrics/query", params={"attr.n": "200", "name": METRIC})
    assert found.json()["series"], found.text


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/errors", {"service": "a\x00b"}),
        ("/api/v1/metrics", {"name": "a\x00b"}),
        ("/api/v1/metrics/query", {"name": "a\x00b"}),
        ("/api/v1/metrics/query", {"name": METRIC, "group_by": "a\x00b,\x00"}),
        ("/api/v1/dashboard/overview", {"service": "a\x00b"}),
        ("/api/v1/dashboard/llm", {"service": "a\x00b"}),
        ("/api/v1/traces", {"service": "\x00", "name": "a\x00", "attr.k\x00": "\x00"}),
        ("/api/v1/logs", {"q": "a\x00b", "service": "\x00"}),
    ],
)
async def test_nul_characters_in_text_filters_match_as_stored_data_does(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    # Stored text never holds NUL (ingest strips it), so a filter is read without it.
    await seed_metric(client)
    response = await client.get(path, params=params)
    if path == "/api/v1/metrics/query" and params["name"] != METRIC:
        error_message(response, 404, "no metric named 'ab'")
    else:
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("path", "limit", "maximum"),
    [
        ("/api/v1/traces", "1000", "100"),
        ("/api/v1/logs", "1001", "1000"),
        ("/api/v1/metrics", "99999999999999999999", "10000"),
        ("/api/v1/metrics/query", "0", "1"),
        ("/api/v1/errors", "-1", "1"),
        ("/api/v1/errors", "many", "integer"),
    ],
)
async def test_bad_limits_are_400_in_the_error_shape(
    client: httpx.AsyncClient, path: str, limit: str, maximum: str
) -> None:
    response = await client.get(path, params={"limit": limit, "name": METRIC})
    message = error_message(response, 400, "limit", maximum)
    assert response.json()["error"]["code"] == "bad_request"
    assert message.startswith(f"limit {limit!r:.60}"), message


async def test_bad_path_and_other_integer_parameters_are_400(client: httpx.AsyncClient) -> None:
    fingerprint = "0" * 32
    response = await client.get(f"/api/v1/errors/{fingerprint}", params={"events": "9999999999"})
    error_message(response, 400, "events", "200")
    for trace_id in ("%00" * 16, "f" * 5000, "é" * 16):
        error_message(await client.get(f"/api/v1/traces/{trace_id}"), 400, "trace_id")


async def test_a_logs_cursor_with_a_tampered_tie_breaker_is_400(
    client: httpx.AsyncClient,
) -> None:
    logs = [native_item("logs", message=f"m{number}") for number in range(3)]
    assert (await client.post("/api/v1/ingest/logs", json={"logs": logs})).json()["accepted"] == 3
    cursor = (await client.get("/api/v1/logs", params={"limit": 1})).json()["next_cursor"]
    document = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for tie in (2**70, -(2**70)):
        document["p"][1] = tie
        forged = base64.urlsafe_b64encode(json.dumps(document).encode()).decode()
        error_message(await client.get("/api/v1/logs", params={"limit": 1, "cursor": forged}),
                      400, "cursor")  # fmt: skip


async def test_full_text_queries_postgresql_cannot_run_are_400(client: httpx.AsyncClient) -> None:
    # More than 32 NOTs in a row was "tsquery stack too small" (500); 60,000 characters of
    # words a 1-second "stack depth limit exceeded".
    for q in ("-" * 40, "a " + "- " * 40 + "b", "--" * 9 + "a"):
        error_message(await client.get("/api/v1/logs", params={"q": q}), 400, "in a row")
    for q in ("-a " * 20_000, "x" * 1025):
        error_message(await client.get("/api/v1/logs", params={"q": q}), 400, "at most 1024")
    for q in ("-" * 16 + "a", "a b " * 256, "a " + "- " * 16 + "b"):
        response = await client.get("/api/v1/logs", params={"q": q})
        assert response.status_code == 200, response.text
