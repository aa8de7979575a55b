"""Jaeger trace search: filters and tags as Jaeger reads them, traces by id, keys and
projects, and bad parameters answered 400 in Jaeger's error shape with Jaeger's message."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from api.jaeger_kit import agent_trace, jaeger_error, now_us, send_otlp
from otlp_testkit import attributes_json

MINUTE_US = 60_000_000
TRACES = [f"{n:x}" * 32 for n in range(10, 13)]  # aaaa…, bbbb…, cccc…: oldest first
HEALTH_TRACE = "d" * 32
JAEGER_PATHS = (
    "/api/services",
    "/api/services/assistant-api/operations",
    "/api/operations?service=assistant-api",
    "/api/traces?service=assistant-api",
    f"/api/traces/{HEALTH_TRACE}",
    "/api/dependencies",
)


def _health_check(trace_id: str, start_us: int) -> dict[str, Any]:
    span = {
        "traceId": trace_id,
        "spanId": "d" * 16,
        "name": "GET /health",
        "kind": 2,
        "startTimeUnixNano": str(start_us * 1000),
        "endTimeUnixNano": str(start_us * 1000 + 2_000_000),
        "attributes": attributes_json({"http.route": "/health"}),
    }
    resource = {"service.name": "probe", "deployment.environment": "prod"}
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes_json(resource)},
                "scopeSpans": [{"scope": {}, "spans": [span]}],
            }
        ]
    }


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> dict[str, int]:
    """Three assistant turns (the newest slow) and a health check, in the last 40 minutes."""
    base = now_us() - 40 * MINUTE_US
    for index, trace_id in enumerate(TRACES):
        start = base + index * 5 * MINUTE_US
        await send_otlp(client, agent_trace(trace_id, start * 1000, slow=index == 2))
    await send_otlp(client, _health_check(HEALTH_TRACE, base + 30 * MINUTE_US))
    return {"start": base - MINUTE_US, "end": now_us()}


async def _search(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/traces", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["errors"] is None and body["total"] == 0
    for trace in body["data"]:
        spans = {span["spanID"] for span in trace["spans"]}
        assert len(spans) == len(trace["spans"]) and trace["processes"]
    return [trace["traceID"] for trace in body["data"]]


NEWEST_FIRST = TRACES[::-1]
SEARCHES: list[tuple[dict[str, str], list[str]]] = [
    ({"service": "assistant-api"}, NEWEST_FIRST),
    ({"service": "assistant-api", "operation": "chat gpt-4o"}, NEWEST_FIRST),
    ({"service": "assistant-api", "operation": "no such operation"}, []),
    ({"tags": '{"error":"true"}'}, NEWEST_FIRST),
    ({"tags": "error=true"}, NEWEST_FIRST),
    ({"tag": "error:true"}, NEWEST_FIRST),
    ({"tags": '{"otel.status_code":"ERROR"}', "service": "assistant-tools"}, NEWEST_FIRST),
    ({"tags": '{"span.status":"ok"}'}, []),
    ({"service": "assistant-api", "minDuration": "2s"}, [TRACES[2]]),
    ({"service": "assistant-api", "minDuration": "1s", "maxDuration": "3s"}, [TRACES[2]]),
    (
        {"service": "assistant-api", "operation": "chat gpt-4o", "maxDuration": "240ms"},
        NEWEST_FIRST,
    ),
    ({"service": "assistant-api", "operation": "chat gpt-4o", "maxDuration": "239.9ms"}, []),
    ({"tags": '{"gen_ai.provider.name":"openai"}'}, NEWEST_FIRST),
    ({"tags": 'gen_ai.usage.input_tokens=1200 gen_ai.request.model="gpt-4o"'}, NEWEST_FIRST),
    # One span must match every tag, as in Jaeger: these two are on different spans.
    ({"tags": "gen_ai.usage.input_tokens=1200 user.id=u-42"}, []),
    ({"tags": '{"gen_ai.usage.input_tokens":1200}'}, NEWEST_FIRST),
    ({"tags": '{"deployment.environment":"prod"}'}, [HEALTH_TRACE]),
    ({"tags": '{"resource.deployment.environment":"prod"}'}, [HEALTH_TRACE]),
    ({"tags": '{"span.kind":"client"}', "service": "assistant-tools"}, []),
    ({"tags": '{"span.kind":"server"}', "service": "assistant-tools"}, NEWEST_FIRST),
    ({"limit": "2"}, [HEALTH_TRACE, TRACES[2]]),
]


@pytest.mark.parametrize(("params", "expected"), SEARCHES)
async def test_search_filters(
    client: httpx.AsyncClient,
    seeded: dict[str, int],
    params: dict[str, str],
    expected: list[str],
) -> None:
    window = {"start": str(seeded["start"]), "end": str(seeded["end"])}
    assert await _search(client, **window, **params) == expected


async def test_search_defaults_to_jaegers_two_day_lookback(
    client: httpx.AsyncClient, seeded: dict[str, int]
) -> None:
    assert await _search(client, service="assistant-api") == NEWEST_FIRST
    # A window that ends before the data finds nothing.
    before = str(seeded["start"] - MINUTE_US)
    assert await _search(client, service="assistant-api", end=before) == []


async def test_traces_by_id_report_the_missing_ones(
    client: httpx.AsyncClient, seeded: dict[str, int]
) -> None:
    response = await client.get(
        "/api/traces", params=[("traceID", TRACES[0]), ("traceID", "ff"), ("traceID", TRACES[1])]
    )
    assert response.status_code == 200
    body = response.json()
    assert [trace["traceID"] for trace in body["data"]] == [TRACES[0], TRACES[1]]
    assert body["errors"] == [{"msg": "trace not found", "traceID": "00000000000000ff"}]


async def test_grafanas_trace_query_with_time_parameters(
    client: httpx.AsyncClient, seeded: dict[str, int]
) -> None:
    """Grafana (traceIdTimeParams) adds its time range to the trace URL; it is a hint."""
    params = {"start": str(seeded["start"] // 1000), "end": str(seeded["end"] // 1000)}
    response = await client.get(f"/api/traces/{TRACES[0]}", params=params)
    assert response.status_code == 200
    assert len(response.json()["data"][0]["spans"]) == 3


async def test_every_endpoint_takes_a_read_key_and_answers_in_jaegers_shape(
    anonymous: httpx.AsyncClient,
    keyed_client: Callable[[str], httpx.AsyncClient],
    make_key: Callable[..., Any],
    project_name: str,
    collector: Any,
) -> None:
    ingest_only = await make_key(project_name, "ingest")
    read_key = await make_key(project_name, "read")
    async with (
        keyed_client(ingest_only) as ingest_client,
        httpx.AsyncClient(base_url=collector.url, headers={"x-api-key": read_key}) as header,
    ):
        for path in JAEGER_PATHS:
            response = await anonymous.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            message = response.json()["errors"][0]["msg"]
            assert response.json() == jaeger_error(401, message) and "API key" in message
            response = await ingest_client.get(path)
            assert response.status_code == 403, path
            assert response.json() == jaeger_error(403, response.json()["errors"][0]["msg"])
            assert "'read' scope" in response.json()["errors"][0]["msg"]
            response = await header.get(path)
            assert response.status_code in (200, 404), (path, response.text)


async def test_another_projects_key_sees_none_of_it(
    client: httpx.AsyncClient,
    keyed_client: Callable[[str], httpx.AsyncClient],
    make_key: Callable[..., Any],
    seeded: dict[str, int],
) -> None:
    async with keyed_client(await make_key(f"other-{uuid.uuid4().hex[:8]}", "read")) as other:
        await _sees_nothing(other)
    assert len((await client.get("/api/services")).json()["data"]) == 3


async def _sees_nothing(other_client: httpx.AsyncClient) -> None:
    empty = {"total": 0, "limit": 0, "offset": 0, "errors": None}
    assert (await other_client.get("/api/services")).json() == {"data": [], **empty}
    answer = await other_client.get("/api/services/assistant-api/operations")
    assert answer.json() == {"data": [], **empty}
    answer = await other_client.get("/api/operations", params={"service": "assistant-api"})
    assert answer.json() == {"data": [], **empty}
    assert await _search(other_client, service="assistant-api") == []
    answer = await other_client.get(f"/api/traces/{TRACES[0]}")
    assert answer.status_code == 404 and answer.json() == jaeger_error(404, "trace not found")
    answer = await other_client.get("/api/traces", params={"traceID": TRACES[0]})
    assert answer.json()["data"] == [] and answer.json()["errors"][0]["msg"] == "trace not found"
    assert (await other_client.get("/api/dependencies")).json() == {"data": [], **empty}


def _unparsable(name: str, problem: str) -> str:
    return f"unable to parse param '{name}': {problem}"


def _not_int(name: str, text: str) -> str:
    return _unparsable(name, f'strconv.ParseInt: parsing "{text}": invalid syntax')


ONE_TO_1000 = _unparsable("limit", "use 1 to 1000")
BAD_PARAMETERS: list[tuple[str, str]] = [
    # Jaeger's own messages, from its query_parser_test.go and http_handler_test.go.
    (
        "/api/traces?service=s&minDuration=20",
        _unparsable("minDuration", 'time: missing unit in duration "20"'),
    ),
    (
        "/api/traces?service=s&minDuration=20s&maxDuration=30",
        _unparsable("maxDuration", 'time: missing unit in duration "30"'),
    ),
    ("/api/traces?minDuration=abc", _unparsable("minDuration", 'time: invalid duration "abc"')),
    (
        "/api/traces?minDuration=5d",
        _unparsable("minDuration", 'time: unknown unit "d" in duration "5d"'),
    ),
    (
        "/api/traces?minDuration=25s&maxDuration=1s",
        "'maxDuration' should be greater than 'minDuration'",
    ),
    (
        "/api/traces?tag=k:v&tag=x:y&tag=k",
        "malformed 'tag' parameter, expecting key:value, received: k",
    ),
    ("/api/traces?start=a", _not_int("start", "a")),
    ("/api/traces?end=b", _not_int("end", "b")),
    ("/api/traces/123456?start=a", _not_int("start", "a")),
    (
        "/api/traces/123456?raw=foobar",
        _unparsable("raw", 'strconv.ParseBool: parsing "foobar": invalid syntax'),
    ),
    ("/api/traces?limit=x", _not_int("limit", "x")),
    ("/api/traces?limit=0", ONE_TO_1000),
    ("/api/traces?limit=1001", ONE_TO_1000),
    ("/api/traces?start=20&end=10", "'start' must not be after 'end'"),
    (
        "/api/traces?start=99999999999999999999",
        _unparsable(
            "start", 'strconv.ParseInt: parsing "99999999999999999999": value out of range'
        ),
    ),
    ("/api/traces/zzz", 'strconv.ParseUint: parsing "zzz": invalid syntax'),
    ("/api/traces?traceID=xyz", 'strconv.ParseUint: parsing "xyz": invalid syntax'),
    (
        "/api/traces?tags=error%3Dfalse",
        "error=false is not supported; search for span.status=ok or span.status=unset instead",
    ),
    (
        '/api/traces?tags={"span.kind":"sideways"}',
        "span.kind 'sideways' is not a span kind; use one of server, client, producer, "
        "consumer, internal",
    ),
    (
        '/api/traces?tags={"otel.scope.name":"x"}',
        "searching by otel.scope.name is not supported",
    ),
    ("/api/operations", "parameter 'service' is required"),
    (
        "/api/operations?service=s&spanKind=foo",
        _unparsable("spanKind", "unsupported span kind: 'foo'"),
    ),
    ("/api/dependencies?endTs=foo", _not_int("endTs", "foo")),
    ("/api/dependencies?lookback=foo", _not_int("lookback", "foo")),
    ("/api/dependencies?lookback=-5", _unparsable("lookback", "must not be negative")),
]


@pytest.mark.parametrize(("path", "message"), BAD_PARAMETERS)
async def test_bad_parameters_answer_400_in_jaegers_shape(
    client: httpx.AsyncClient, path: str, message: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 400, response.text
    assert response.json() == jaeger_error(400, message)


async def test_malformed_tags_json_is_refused(client: httpx.AsyncClient) -> None:
    for tags in ('{"x":', '["x"]', '{"x":[1]}', '{"x":null}'):
        response = await client.get("/api/traces", params={"tags": tags})
        assert response.status_code == 400, tags
        assert response.json()["errors"][0]["msg"].startswith("malformed 'tags' parameter")
    many = json.dumps({f"k{n}": "v" for n in range(21)})
    response = await client.get("/api/traces", params={"tags": many})
    assert response.json() == jaeger_error(400, "at most 20 tags, got 21")


async def test_paths_no_route_matches_answer_in_jaegers_shape(client: httpx.AsyncClient) -> None:
    for path in ("/api/nothing-here", "/api/traces/a/b", "/api/services/x/operations/y"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json() == jaeger_error(404, "Not Found"), path
    response = await client.post("/api/services")
    assert response.status_code == 405
    assert response.json() == jaeger_error(405, "Method Not Allowed")
    # The native API keeps its own shape.
    native = await client.get("/api/v1/nothing-here")
    assert native.status_code == 404 and set(native.json()) == {"error"}
