"""Metric alert rule values: the metrics query API's numbers, for one window.

The dataset is the metrics query tests' (`dataset(base)`, OTLP JSON through the real
ingest path): points sit at known offsets from `base`, none on a minute boundary, so a
rule over (base + 60k, base + 60(k + 1)] reads exactly the points of the API's step k.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from query.test_metrics_query import dataset
from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.alert_rules import RuleQuery, parse_rule
from app.query.metric_samples import metric_samples
from app.query.metrics import InvalidMetricQuery


def _query(aggregation: str, metric: str, window: str = "1m", **rest: Any) -> RuleQuery:
    body: dict[str, Any] = {
        "name": "rule",
        "signal": "metrics",
        "query": {"aggregation": aggregation, "metric": metric, "window": window, **rest},
    }
    if aggregation != "absent":
        body["condition"] = {"op": ">", "threshold": 0}
    return parse_rule(body).query


async def _send(http: httpx.AsyncClient, base: int) -> None:
    response = await http.post("/v1/metrics", json=dataset(base))
    assert response.status_code == 200, response.text


@pytest.fixture
async def base(client: httpx.AsyncClient) -> int:
    start = (int(time.time()) - 45 * 60) // 60 * 60
    await _send(client, start)
    return start


@pytest.fixture
async def project_id(db, project_name, base) -> int:
    return await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)


async def samples(
    engine: AsyncEngine, project_id: int, query: RuleQuery, now_s: float
) -> dict[tuple, float]:
    now = datetime.fromtimestamp(now_s, tz=UTC)
    async with engine.connect() as connection:
        found = await metric_samples(connection, project_id, query, now)
    return {tuple(sorted(sample.labels.items())): sample.value for sample in found}


async def api_steps(client: httpx.AsyncClient, base: int, **params: Any) -> dict[int, dict]:
    """{step offset: {labels: value}} from GET /api/v1/metrics/query, steps of 60 s."""
    params = {"start": str(base), "end": str(base + 179), "step": "60s", **params}
    response = await client.get("/api/v1/metrics/query", params=params)
    assert response.status_code == 200, response.text
    steps: dict[int, dict] = {0: {}, 60: {}, 120: {}}
    for series in response.json()["series"]:
        for at, value in series["points"]:
            steps[at - base][tuple(sorted(series["labels"].items()))] = value
    return steps


CASES = [
    ("tokens", "sum", []), ("tokens", "rate", ["service.name"]), ("tokens", "count", ["model"]),
    ("tokens", "avg", []), ("requests", "sum", ["route"]), ("requests", "rate", []),
    ("requests", "max", []), ("queue.depth", "avg", []), ("queue.depth", "min", ["queue"]),
    ("queue.depth", "max", []), ("queue.depth", "count", []), ("latency", "p50", ["model"]),
    ("latency", "p90", []), ("latency", "p95", []), ("latency", "p99", ["model"]),
    ("latency", "avg", []), ("latency", "rate", []), ("latency", "count", []),
    ("latency", "sum", []), ("latency.cumulative", "p50", []),
    ("latency.cumulative", "count", []), ("exp.latency", "p90", []),
    ("exp.latency", "p50", ["shard"]), ("rpc.duration", "p99", []),
    ("rpc.duration", "avg", []),
]  # fmt: skip


@pytest.mark.parametrize(("metric", "agg", "group_by"), CASES)
async def test_one_window_equals_the_apis_step(
    client, engine, base, project_id, metric, agg, group_by
) -> None:
    steps = await api_steps(client, base, name=metric, agg=agg, group_by=",".join(group_by))
    assert any(steps.values())
    query = _query(agg, metric, group_by=group_by)
    for offset, expected in steps.items():
        got = await samples(engine, project_id, query, base + offset + 60)
        assert got == pytest.approx(expected, rel=1e-12), offset


async def test_windows_longer_than_a_step_filters_and_labels(client, engine, base, project_id):
    def at(minutes: int) -> float:
        return base + 60 * minutes

    five = "5m"
    tokens = await samples(engine, project_id, _query("sum", "tokens", five), at(4))
    assert tokens == {(): 174.0}  # 5 + 7 + 11 from api, 100 + 50 + 1 from the gateway
    rate = await samples(engine, project_id, _query("rate", "tokens", five), at(4))
    assert rate == {(): pytest.approx(174 / 300)}
    api_only = _query("sum", "tokens", five, filters={"service": "api"})
    assert await samples(engine, project_id, api_only, at(4)) == {(): 23.0}
    claude = _query("sum", "tokens", five, filters={"attributes": {"model": "claude"}})
    assert await samples(engine, project_id, claude, at(4)) == {(): 151.0}
    # A key the series lack is "" (the API leaves it out).
    routes = _query("sum", "requests", five, group_by=["route", "model"])
    assert await samples(engine, project_id, routes, at(4)) == {
        (("model", ""), ("route", "/chat")): 101.0,  # 30 + 25 + 46
        (("model", ""), ("route", "/health")): 9.0,
    }
    # The window is open at its start and closed at its end: (base + 10, base + 70] leaves
    # out the point at +10 and takes the one at +70.
    api_minute = _query("sum", "tokens", filters={"service": "api"})
    assert await samples(engine, project_id, api_minute, base + 70) == {(): 18.0}
    assert await samples(engine, project_id, api_minute, base + 69) == {(): 12.0}


async def test_nothing_to_read(engine, base, project_id) -> None:
    # Before any point: no group has a value, so no sample (and no rule fires).
    assert await samples(engine, project_id, _query("sum", "tokens"), base - 3600) == {}
    assert await samples(engine, project_id, _query("sum", "no.such.metric"), base + 60) == {}
    assert await samples(engine, project_id, _query("absent", "no.such.metric"), base) == {(): 1.0}
    grouped = _query("absent", "no.such.metric", group_by=["queue"])
    assert await samples(engine, project_id, grouped, base) == {}
    with pytest.raises(InvalidMetricQuery, match="rate needs a counter"):
        await samples(engine, project_id, _query("rate", "queue.depth"), base + 60)


async def test_absent(engine, base, project_id) -> None:
    one = _query("absent", "queue.depth")
    per_queue = _query("absent", "queue.depth", group_by=["queue"])
    # (base + 40, base + 100]: queue a at +90, queue b at +50 and +100.
    assert await samples(engine, project_id, one, base + 100) == {}
    assert await samples(engine, project_id, per_queue, base + 100) == {}
    # (base + 90, base + 150]: a's last point (+90) is just outside; b reported at +100.
    assert await samples(engine, project_id, one, base + 150) == {}
    assert await samples(engine, project_id, per_queue, base + 150) == {(("queue", "a"),): 1.0}
    later = base + 3600
    assert await samples(engine, project_id, one, later) == {(): 1.0}
    assert await samples(engine, project_id, per_queue, later) == {
        (("queue", "a"),): 1.0,
        (("queue", "b"),): 1.0,
    }
    filtered = _query("absent", "queue.depth", group_by=["queue"], filters={"service": "api"})
    assert await samples(engine, project_id, filtered, later) == {}
    gone = base + 60 + 2 * 86400
    assert await samples(engine, project_id, per_queue, gone) == {}
    assert await samples(engine, project_id, one, gone) == {(): 1.0}


async def test_other_projects_never_count(engine, base, project_id, other_client) -> None:
    await _send(other_client, base)
    await _send(other_client, base + 30)
    five = "5m"
    end = base + 240
    assert await samples(engine, project_id, _query("sum", "tokens", five), end) == {(): 174.0}
    queues = _query("count", "queue.depth", five, group_by=["queue"])
    assert await samples(engine, project_id, queues, end) == {
        (("queue", "a"),): 1.0,
        (("queue", "b"),): 1.0,
    }
    later = base + 3600
    absent = _query("absent", "queue.depth", group_by=["queue"], window=five)
    assert len(await samples(engine, project_id, absent, later)) == 2
