"""The per-project limit on series per metric name: through a real collector, and under races."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import ensure_project
from app.domain.metrics import GAUGE, MetricStream
from app.domain.records import Resource, Scope
from app.ingest.series import NewSeries, SeriesRegistry

SECOND = 1_000_000_000
LIMIT_ENV = {"TELEMETRY_MAX_SERIES_PER_METRIC": "3"}


def _document(name: str, routes: list[str], when: int) -> dict[str, Any]:
    points = [
        {
            "timeUnixNano": str(when),
            "asInt": "1",
            "attributes": [{"key": "route", "value": {"stringValue": route}}],
        }
        for route in routes
    ]
    metric = {"name": name, "sum": {"aggregationTemporality": 2, "isMonotonic": True}}
    metric["sum"]["dataPoints"] = points  # type: ignore[index]
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}


async def _send(collector: Collector, key: str, document: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{collector.url}/v1/metrics",
            json=document,
            headers={"Authorization": f"Bearer {key}"},
        )
    assert response.status_code == 200, response.text
    return response.json()


async def _routes(db: asyncpg.Connection, project: str, name: str) -> dict[str, int]:
    """route → number of stored points, for every series of the metric."""
    rows = await db.fetch(
        "SELECT s.attributes->>'route' AS route, count(p.time) AS points "
        "FROM metric_series s JOIN projects pr ON pr.id = s.project_id "
        "LEFT JOIN metric_points p USING (project_id, series_id) "
        "WHERE pr.name = $1 AND s.name = $2 GROUP BY 1",
        project,
        name,
    )
    return {row["route"]: row["points"] for row in rows}


def _limit_message(name: str, count: int) -> str:
    noun = "point" if count == 1 else "points"
    return f"metric '{name}' has reached the 3-series limit; {count} {noun} of new series rejected"


async def test_series_limit_per_metric_and_project(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    db: asyncpg.Connection,
    project_name: str,
) -> None:
    running = start_collector(env=LIMIT_ENV)
    key = await make_key(project_name, "ingest")
    other_project = f"{project_name}-other"
    other_key = await make_key(other_project, "ingest")
    now = time.time_ns() // 1000 * 1000
    five = [f"/r{index}" for index in range(5)]

    # Five new series: the first three (in request order) fit, two points are refused.
    answer = await _send(running, key, _document("http.requests", five, now))
    assert answer == {
        "partialSuccess": {
            "rejectedDataPoints": "2",
            "errorMessage": _limit_message("http.requests", 2),
        }
    }
    assert await _routes(db, project_name, "http.requests") == {"/r0": 1, "/r1": 1, "/r2": 1}

    # Existing series keep accepting points; a new one is still refused.
    answer = await _send(
        running, key, _document("http.requests", ["/r0", "/r1", "/r2", "/r9"], now + SECOND)
    )
    assert answer["partialSuccess"] == {
        "rejectedDataPoints": "1",
        "errorMessage": _limit_message("http.requests", 1),
    }
    assert await _routes(db, project_name, "http.requests") == {"/r0": 2, "/r1": 2, "/r2": 2}

    # Another metric name has its own budget.
    answer = await _send(running, key, _document("llm.tokens", five[:3], now))
    assert answer == {}
    assert len(await _routes(db, project_name, "llm.tokens")) == 3

    # Another project has its own budget, and the same identities get their own rows.
    answer = await _send(running, other_key, _document("http.requests", five[::-1], now))
    assert answer["partialSuccess"]["rejectedDataPoints"] == "2"
    assert await _routes(db, other_project, "http.requests") == {"/r4": 1, "/r3": 1, "/r2": 1}
    assert len(await _routes(db, project_name, "http.requests")) == 3

    # A second process, whose cache is empty, finds the registered series in the database.
    second = start_collector(env=LIMIT_ENV)
    document = _document("http.requests", ["/r2", "/r7", "/r1"], now + 2 * SECOND)
    request = json_format.ParseDict(document, metrics_service_pb2.ExportMetricsServiceRequest())
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            f"{second.url}/v1/metrics",
            content=request.SerializeToString(),
            headers={"Authorization": f"Bearer {key}", "content-type": "application/x-protobuf"},
        )
    assert response.status_code == 200, response.text
    answer_pb = metrics_service_pb2.ExportMetricsServiceResponse.FromString(response.content)
    assert answer_pb.partial_success.rejected_data_points == 1
    assert answer_pb.partial_success.error_message == _limit_message("http.requests", 1)
    assert await _routes(db, project_name, "http.requests") == {"/r0": 2, "/r1": 3, "/r2": 3}


async def test_concurrent_metric_series_registrations_never_pass_the_limit(
    engine: AsyncEngine, db: asyncpg.Connection, project_name: str
) -> None:
    project_id = await ensure_project(engine, project_name)
    stream = MetricStream("race", GAUGE, "", "", 0, False, Resource({}), Scope())
    other = MetricStream("race.other", GAUGE, "", "", 0, False, Resource({}), Scope())
    # Four "processes", each with its own cache, racing for five places with overlapping sets.
    registries = [SeriesRegistry(engine, 5) for _ in range(4)]
    wanted = [
        {
            series_id: NewSeries(series_id, stream, {"n": series_id})
            for series_id in range(index * 3, index * 3 + 6)
        }
        | {1000 + index: NewSeries(1000 + index, other, {})}
        for index in range(4)
    ]
    refused = await asyncio.gather(
        *(
            registry.admit(project_id, series)
            for registry, series in zip(registries, wanted, strict=True)
        )
    )
    rows = await db.fetch(
        "SELECT name, series_id FROM metric_series WHERE project_id = $1", project_id
    )
    stored = {row["series_id"] for row in rows if row["name"] == "race"}
    assert len(stored) == 5
    # Each name has its own budget: the other metric's series were all admitted.
    assert {row["series_id"] for row in rows if row["name"] == "race.other"} == {
        1000,
        1001,
        1002,
        1003,
    }
    for series, refused_ids in zip(wanted, refused, strict=True):
        assert refused_ids == set(series) - stored - {1000, 1001, 1002, 1003}

    # A registry that has seen the name full still admits series registered elsewhere.
    fresh = SeriesRegistry(engine, 5)
    assert await fresh.admit(project_id, {99: NewSeries(99, stream, {})}) == {99}
    known = next(iter(stored))
    assert not fresh.is_known(project_id, known)
    assert await fresh.admit(project_id, {known: NewSeries(known, stream, {})}) == set()
    assert fresh.is_known(project_id, known)
