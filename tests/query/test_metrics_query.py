"""GET /api/v1/metrics and /api/v1/metrics/query over a dataset sent as OTLP JSON.

Every point sits at a known offset from `base`, a minute boundary about 45 minutes ago;
queries ask for `base .. base + 179` with step 60s, so steps 0, 1, 2 start at base,
base + 60 and base + 120. Expected values are worked out by hand in each test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import Collector

STEP = 60
S0_OFFSET = -600  # start time of long-running cumulative series: before the lookback


def _attributes(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"key": key, "value": {"stringValue": value}} for key, value in values.items()]


def _ns(seconds: float) -> str:
    return str(int(seconds * 1_000_000_000))


def _resource(service: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resource": {"attributes": _attributes({"service.name": service})},
        "scopeMetrics": [{"scope": {"name": "metrics-query-test"}, "metrics": metrics}],
    }


def _number(time_s: float, value: float, start_s: float | None = None, **attrs: str) -> dict:
    point: dict[str, Any] = {"timeUnixNano": _ns(time_s), "asDouble": value}
    if start_s is not None:
        point["startTimeUnixNano"] = _ns(start_s)
    if attrs:
        point["attributes"] = _attributes(attrs)
    return point


def _sum(name: str, temporality: int, points: list[dict]) -> dict[str, Any]:
    return {
        "name": name,
        "unit": "1",
        "sum": {"aggregationTemporality": temporality, "isMonotonic": True, "dataPoints": points},
    }


def _histogram_point(
    time_s: float,
    bounds: list[float],
    counts: list[int],
    total: float,
    start_s: float = 0,
    **a: str,
) -> dict[str, Any]:
    return {
        "timeUnixNano": _ns(time_s),
        "startTimeUnixNano": _ns(start_s) if start_s else "0",
        "count": str(sum(counts)),
        "sum": total,
        "explicitBounds": bounds,
        "bucketCounts": [str(count) for count in counts],
        "attributes": _attributes(a),
    }


def dataset(base: int) -> dict[str, Any]:
    s0 = base + S0_OFFSET
    tokens = [
        _sum(
            "tokens",
            1,
            [
                _number(base + 10, 5, model="gpt-4o"),
                _number(base + 40, 7, model="gpt-4o"),
                _number(base + 70, 11, model="gpt-4o"),
            ],
        ),
    ]
    gateway_tokens = [
        _sum(
            "tokens",
            1,
            [
                _number(base + 20, 100, model="claude"),
                _number(base + 80, 50, model="claude"),
                _number(base + 130, 1, model="claude"),
            ],
        ),
    ]
    requests = _sum("requests", 2, [
        _number(base - 30, 100, s0, route="/chat"),  # baseline, inside the 5m lookback
        _number(base + 10, 110, s0, route="/chat"),
        _number(base + 50, 130, s0, route="/chat"),
        _number(base + 70, 5, s0, route="/chat"),  # a drop: reset
        _number(base + 100, 25, s0, route="/chat"),
        _number(base + 130, 40, base + 125, route="/chat"),  # restart: new start time
        _number(base + 170, 46, base + 125, route="/chat"),
        _number(base + 15, 3, base + 5, route="/health"),  # began in range: from zero
        _number(base + 75, 9, base + 5, route="/health"),
    ])  # fmt: skip
    gauge = {
        "name": "queue.depth",
        "unit": "{item}",
        "gauge": {"dataPoints": [
            _number(base + 5, 4, queue="a"), _number(base + 30, 6, queue="a"),
            _number(base + 90, 10, queue="a"),
            _number(base + 10, 1, queue="b"), _number(base + 50, 3, queue="b"),
            _number(base + 100, 2, queue="b"),
        ]},
    }  # fmt: skip
    bounds = [100.0, 250.0, 500.0, 1000.0]
    latency = {
        "name": "latency",
        "unit": "ms",
        "histogram": {"aggregationTemporality": 1, "dataPoints": [
            _histogram_point(base + 20, bounds, [2, 3, 4, 1, 0], 3000, model="gpt-4o"),
            _histogram_point(base + 40, bounds, [0, 1, 1, 0, 0], 700, model="gpt-4o"),
            _histogram_point(base + 30, bounds, [1, 0, 2, 0, 1], 5000, model="claude"),
        ]},
    }  # fmt: skip
    small = [1.0, 5.0]
    cumulative_latency = {
        "name": "latency.cumulative",
        "unit": "s",
        "histogram": {"aggregationTemporality": 2, "dataPoints": [
            _histogram_point(base - 20, small, [1, 1, 0], 3, s0),
            _histogram_point(base + 30, small, [3, 2, 1], 20, s0),
            _histogram_point(base + 80, small, [1, 0, 0], 1, s0),  # count dropped: reset
        ]},
    }  # fmt: skip
    exponential = {
        "name": "exp.latency",
        "unit": "ms",
        "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
            {"timeUnixNano": _ns(base + 20), "count": "4", "sum": 10, "scale": 1,
             "positive": {"offset": 2, "bucketCounts": ["2", "2"]},
             "attributes": _attributes({"shard": "a"})},
            {"timeUnixNano": _ns(base + 40), "count": "8", "sum": 20, "scale": 0,
             "positive": {"offset": 0, "bucketCounts": ["4", "4"]},
             "attributes": _attributes({"shard": "b"})},
        ]},
    }  # fmt: skip
    summary = {
        "name": "rpc.duration",
        "unit": "ms",
        "summary": {"dataPoints": [
            {"timeUnixNano": _ns(base - 30), "startTimeUnixNano": _ns(s0), "count": "5",
             "sum": 20, "quantileValues": [{"quantile": 0.5, "value": 3},
                                           {"quantile": 0.99, "value": 8}]},
            {"timeUnixNano": _ns(base + 30), "startTimeUnixNano": _ns(s0), "count": "10",
             "sum": 50, "quantileValues": [{"quantile": 0.5, "value": 4},
                                           {"quantile": 0.99, "value": 9}]},
        ]},
    }  # fmt: skip
    return {
        "resourceMetrics": [
            _resource("api", [*tokens, requests, latency, cumulative_latency, summary]),
            _resource("gateway", gateway_tokens),
            _resource("worker", [gauge, exponential]),
        ]
    }


async def _send(http: httpx.AsyncClient, document: dict[str, Any]) -> None:
    response = await http.post("/v1/metrics", json=document)
    assert response.status_code == 200, response.text
    assert not response.json().get("partialSuccess", {}).get("rejectedDataPoints"), response.text


@pytest.fixture
async def base(client: httpx.AsyncClient) -> int:
    start = (int(time.time()) - 45 * 60) // STEP * STEP
    await _send(client, dataset(start))
    return start


async def _query(client: httpx.AsyncClient, base: int, **params: Any) -> httpx.Response:
    params = {"start": str(base), "end": str(base + 179), "step": "60s", **params}
    return await client.get("/api/v1/metrics/query", params=params)


async def _series(client: httpx.AsyncClient, base: int, **params: Any) -> dict[str, list]:
    """{labels as "k=v,...": [[offset from base, value], ...]}."""
    response = await _query(client, base, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    result = {}
    for series in body["series"]:
        label = ",".join(f"{key}={value}" for key, value in sorted(series["labels"].items()))
        result[label] = [[at - base, value] for at, value in series["points"]]
    return result


def _approx(series: dict[str, list]) -> dict[str, list]:
    return {k: [[t, pytest.approx(v)] for t, v in points] for k, points in series.items()}


async def test_delta_sums_add_up_per_step_and_per_group(client, base) -> None:
    assert await _series(client, base, name="tokens", agg="sum") == {
        "": [[0, 112], [60, 61], [120, 1]]
    }
    assert await _series(client, base, name="tokens", agg="sum", group_by="model") == {
        "model=claude": [[0, 100], [60, 50], [120, 1]],
        "model=gpt-4o": [[0, 12], [60, 11]],
    }
    by_service = await _series(client, base, name="tokens", agg="rate", group_by="service.name")
    assert by_service == _approx({
        "service.name=api": [[0, 12 / 60], [60, 11 / 60]],
        "service.name=gateway": [[0, 100 / 60], [60, 50 / 60], [120, 1 / 60]],
    })  # fmt: skip


async def test_attribute_filters_narrow_the_series(client, base) -> None:
    assert await _series(client, base, name="tokens", agg="sum", **{"attr.model": "claude"}) == {
        "": [[0, 100], [60, 50], [120, 1]]
    }
    api = await _series(client, base, name="tokens", agg="sum", **{"attr.service.name": "api"})
    assert api == {"": [[0, 12], [60, 11]]}
    assert await _series(client, base, name="tokens", **{"attr.model": "nope"}) == {}
    injection = {"attr.model') OR 1=1 --": "x", "attr.model": "claude' OR '1'='1"}
    assert await _series(client, base, name="tokens", **injection) == {}


async def test_cumulative_rate_across_a_reset_and_a_restart(client, base) -> None:
    # /chat: +10 +20 in step 0; drop to 5 counts 5, then +20 in step 1; the restart (new
    # start time) counts 40 from zero, then +6 in step 2. /health began at base + 5, so
    # its first point counts 3 from zero, then +6.
    by_route = await _series(client, base, name="requests", agg="sum", group_by="route")
    assert by_route == {"route=/chat": [[0, 30], [60, 25], [120, 46]],
                        "route=/health": [[0, 3], [60, 6]]}  # fmt: skip
    rate = await _series(client, base, name="requests", agg="rate")
    assert rate == _approx({"": [[0, 33 / 60], [60, 31 / 60], [120, 46 / 60]]})
    assert await _series(client, base, name="requests") == rate  # default agg: rate
    assert await _series(client, base, name="requests", agg="avg") == _approx(
        {"": [[0, 16.5], [60, 15.5], [120, 46]]}
    )
    assert await _series(client, base, name="requests", agg="count") == {
        "": [[0, 2], [60, 2], [120, 1]]
    }


async def test_gauge_aggregates_each_series_last_value(client, base) -> None:
    expected = {
        "sum": [[0, 9], [60, 12]],
        "avg": [[0, 4.5], [60, 6]],
        "min": [[0, 3], [60, 2]],
        "max": [[0, 6], [60, 10]],
        "count": [[0, 2], [60, 2]],
    }
    for agg, points in expected.items():
        assert await _series(client, base, name="queue.depth", agg=agg) == {"": points}, agg
    assert await _series(client, base, name="queue.depth", agg="max", group_by="queue") == {
        "queue=a": [[0, 6], [60, 10]],
        "queue=b": [[0, 3], [60, 2]],
    }


def _linear_quantile(q: float, bounds: list[float], counts: list[float]) -> float:
    """histogram_quantile by hand: walk the buckets, interpolate in the one holding the rank."""
    rank, below = q * sum(counts), 0.0
    for index, bound in enumerate(bounds):
        if below + counts[index] >= rank:
            lower = bounds[index - 1] if index else 0.0
            return lower + (bound - lower) * (rank - below) / counts[index]
        below += counts[index]
    return bounds[-1]


async def test_histogram_percentiles_merge_series_and_interpolate(client, base) -> None:
    bounds = [100.0, 250.0, 500.0, 1000.0]
    merged = [3, 4, 7, 1, 1]  # gpt-4o [2,3,4,1,0] + [0,1,1,0,0], claude [1,0,2,0,1]
    # By hand: p50 rank 8 -> (250, 500]: 250 + 250 * (8 - 7) / 7; p90 rank 14.4 -> (500,
    # 1000]: 500 + 500 * 0.4; p99 rank 15.84 -> +Inf bucket: the last bound.
    by_hand = {"p50": 250 + 250 / 7, "p90": 700.0, "p99": 1000.0}
    for agg, value in by_hand.items():
        assert value == pytest.approx(_linear_quantile(float(agg[1:]) / 100, bounds, merged))
        assert await _series(client, base, name="latency", agg=agg) == _approx({"": [[0, value]]})
    gpt = [2, 4, 5, 1, 0]  # p95 rank 11.4 -> (500, 1000]: 500 + 500 * 0.4 / 1
    assert await _series(client, base, name="latency", agg="p95", group_by="model") == _approx(
        {"model=claude": [[0, 1000.0]], "model=gpt-4o": [[0, _linear_quantile(0.95, bounds, gpt)]]}
    )
    assert await _series(client, base, name="latency", agg="count") == {"": [[0, 16]]}
    assert await _series(client, base, name="latency", agg="sum") == {"": [[0, 8700]]}
    assert await _series(client, base, name="latency", agg="avg") == {"": [[0, 8700 / 16]]}
    assert await _series(client, base, name="latency", agg="rate") == _approx({"": [[0, 16 / 60]]})


async def test_cumulative_histogram_uses_reset_aware_increases(client, base) -> None:
    # Step 0: [3,2,1] - [1,1,0] = [2,1,1]: p50 rank 2 ends (0, 1]; p90 rank 3.6 in +Inf -> 5.
    # Step 1: the count dropped, so [1,0,0] counts from zero: p50 rank 0.5 -> 0.5, p90 0.9.
    assert await _series(client, base, name="latency.cumulative", agg="p50") == {
        "": [[0, 1.0], [60, 0.5]]
    }
    assert await _series(client, base, name="latency.cumulative", agg="p90") == {
        "": [[0, 5.0], [60, 0.9]]
    }
    assert await _series(client, base, name="latency.cumulative", agg="count") == {
        "": [[0, 4], [60, 1]]
    }


async def test_exponential_histogram_percentiles_across_scales(client, base) -> None:
    # Shard a alone, scale 1 (base 2**0.5): 2 in (2, 2**1.5], 2 in (2**1.5, 4].
    shard_a = await _series(client, base, name="exp.latency", agg="p90", **{"attr.shard": "a"})
    assert shard_a == _approx({"": [[0, 2 ** ((3 + 1.6 / 2) / 2)]]})
    # Both, merged at scale 0: a becomes 4 in (2, 4]; with b: 4 in (1, 2], 8 in (2, 4].
    # p50 rank 6 -> 2 ** (1 + 2/8); p99 rank 11.88 -> 2 ** (1 + 7.88/8): log-linear.
    assert await _series(client, base, name="exp.latency", agg="p50") == _approx(
        {"": [[0, 2**1.25]]}
    )
    assert await _series(client, base, name="exp.latency", agg="p99") == _approx(
        {"": [[0, 2 ** (1 + 7.88 / 8)]]}
    )
    assert await _series(client, base, name="exp.latency", agg="avg") == {"": [[0, 2.5]]}


async def test_summary_quantiles_and_counts(client, base) -> None:
    assert await _series(client, base, name="rpc.duration", agg="p99") == {"": [[0, 9.0]]}
    assert await _series(client, base, name="rpc.duration", agg="p50") == {"": [[0, 4.0]]}
    # count and sum are cumulative: 10 - 5 observations summing 50 - 20 in step 0.
    assert await _series(client, base, name="rpc.duration", agg="avg") == {"": [[0, 6.0]]}
    response = await _query(client, base, name="rpc.duration", agg="p90")
    assert response.status_code == 400
    assert "0.9" in response.json()["error"]["message"]
    assert "0.5, 0.99" in response.json()["error"]["message"]


async def test_answer_shape_default_step_and_window(client, base) -> None:
    response = await client.get(
        "/api/v1/metrics/query", params={"name": "queue.depth", "agg": "max"}
    )
    body = response.json()
    assert response.status_code == 200, body
    assert (body["type"], body["unit"], body["agg"], body["step"]) == (
        "gauge",
        "{item}",
        "max",
        "60s",
    )
    assert body["series"][0]["labels"] == {}
    stamps = [at for at, _ in body["series"][0]["points"]]
    assert stamps == [base, base + 60] and all(isinstance(at, int) for at in stamps)
    two_hours = await client.get(
        "/api/v1/metrics/query", params={"name": "queue.depth", "start": "now-2h"}
    )
    assert two_hours.json()["step"] == "120s"


async def test_group_limit_truncates(client, base) -> None:
    response = await _query(client, base, name="tokens", group_by="model", limit=1)
    body = response.json()
    assert [series["labels"] for series in body["series"]] == [{"model": "claude"}]
    assert body["truncated"] is True


async def test_list_metrics(client, base) -> None:
    response = await client.get("/api/v1/metrics")
    assert response.status_code == 200
    listed = {
        (m["name"], m["type"], m["unit"], m["series_count"]) for m in response.json()["metrics"]
    }
    assert listed == {
        ("exp.latency", "exponential_histogram", "ms", 2),
        ("latency", "histogram", "ms", 2),
        ("latency.cumulative", "histogram", "s", 1),
        ("queue.depth", "gauge", "{item}", 2),
        ("requests", "sum", "1", 2),
        ("rpc.duration", "summary", "ms", 1),
        ("tokens", "sum", "1", 2),
    }
    prefixed = (await client.get("/api/v1/metrics", params={"name": "latency"})).json()
    assert [m["name"] for m in prefixed["metrics"]] == ["latency", "latency.cumulative"]
    wildcard = (await client.get("/api/v1/metrics", params={"name": "%"})).json()
    assert wildcard["metrics"] == []


async def test_projects_are_isolated(
    client, base, collector: Collector, make_key: Callable[..., Any]
) -> None:
    other_key = await make_key(f"other-{base}-{time.time_ns()}", "ingest", "read")
    async with httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {other_key}"}, timeout=30
    ) as other:
        await _send(other, {"resourceMetrics": [_resource("api", [
            _sum("tokens", 1, [_number(base + 10, 1000, model="gpt-4o")]),
            _sum("only.other", 1, [_number(base + 10, 1, model="x")]),
        ])]})  # fmt: skip
        assert await _series(other, base, name="tokens", agg="sum") == {"": [[0, 1000]]}
        assert (await _query(other, base, name="requests")).status_code == 404
        listed = (await other.get("/api/v1/metrics")).json()["metrics"]
        assert [m["name"] for m in listed] == ["only.other", "tokens"]
    assert await _series(client, base, name="tokens", agg="sum") == {
        "": [[0, 112], [60, 61], [120, 1]]
    }
    assert (await _query(client, base, name="only.other")).status_code == 404


async def test_several_types_under_one_name_need_type(client, base) -> None:
    await _send(client, {"resourceMetrics": [_resource("api", [
        {"name": "tokens", "unit": "1", "gauge": {"dataPoints": [_number(base + 10, 3)]}},
    ])]})  # fmt: skip
    response = await _query(client, base, name="tokens", agg="sum")
    assert response.status_code == 400
    assert "type=" in response.json()["error"]["message"]
    assert await _series(client, base, name="tokens", agg="sum", type="gauge") == {"": [[0, 3]]}
    assert await _series(client, base, name="tokens", agg="sum", type="sum") == {
        "": [[0, 112], [60, 61], [120, 1]]
    }
    missing = await _query(client, base, name="tokens", type="histogram")
    assert missing.status_code == 400 and "no series of type" in missing.text


@pytest.mark.parametrize(
    ("params", "status", "needle"),
    [
        ({}, 400, "name is required"),
        ({"name": "nope"}, 404, "no metric named 'nope'"),
        ({"name": "tokens", "agg": "median"}, 400, "sum, avg, min, max, count, rate, p50"),
        ({"name": "tokens", "step": "soon"}, 400, "step"),
        ({"name": "tokens", "step": "0s"}, 400, "step '0s' is not accepted"),
        ({"name": "tokens", "step": "1500ms"}, 400, "whole number of seconds"),
        ({"name": "tokens", "step": "1s", "start": "now-1d"}, 400, "more than 11000"),
        ({"name": "tokens", "start": "yesterday"}, 400, "start:"),
        ({"name": "tokens", "end": "2026-13-45"}, 400, "end:"),
        ({"name": "tokens", "start": "now", "end": "now-1h"}, 400, "start must not be after end"),
        ({"name": "tokens", "limit": "0"}, 400, "limit"),
        ({"name": "tokens", "limit": "5000"}, 400, "limit"),
        ({"name": "tokens", "type": "counter"}, 400, "type 'counter' is not accepted"),
        ({"name": "tokens", "group_by": ",".join(f"k{i}" for i in range(11))}, 400, "at most 10"),
        ({"name": "tokens", "attr.": "x"}, 400, "attribute key is empty"),
        ({"name": "queue.depth", "agg": "rate"}, 400, "rate needs a counter"),
        ({"name": "queue.depth", "agg": "p95"}, 400, "p95 needs a histogram"),
        ({"name": "tokens", "agg": "p99"}, 400, "p99 needs a histogram"),
        ({"name": "latency", "agg": "max"}, 400, "max is not kept per step"),
    ],
)
async def test_bad_input_is_refused_with_a_reason(client, params, status, needle) -> None:
    # The dataset is not needed: validation comes first, and unknown names are 404.
    await _send(client, {"resourceMetrics": [_resource("api", [
        _sum("tokens", 1, [_number(time.time() - 60, 1)]),
        {"name": "queue.depth", "gauge": {"dataPoints": [_number(time.time() - 60, 1)]}},
        {"name": "latency", "histogram": {"aggregationTemporality": 1, "dataPoints": [
            _histogram_point(time.time() - 60, [1.0], [1, 0], 0.5)]}},
    ])]})  # fmt: skip
    response = await client.get("/api/v1/metrics/query", params=params)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


async def test_read_scope_is_required(collector: Collector) -> None:
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as anonymous:
        response = await anonymous.get("/api/v1/metrics/query", params={"name": "tokens"})
    assert response.status_code == 401
