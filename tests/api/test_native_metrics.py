"""Native metrics: counters, gauges and histogram observations land as OTLP-shaped points."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx


async def test_native_metrics_store_points_and_report_bad_items(client, db, project_name) -> None:
    name = f"assistant.tool.runs.{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    metrics = [
        {"name": name, "type": "counter", "value": 3, "service": "agent",
         "attributes": {"tool": "run_tests"}, "timestamp": now.isoformat()},
        {"name": name, "type": "counter", "value": 2, "service": "agent",
         "attributes": {"tool": "run_tests"},
         "timestamp": (now - timedelta(seconds=5)).timestamp()},
        {"name": "queue.depth", "type": "gauge", "value": 7.5, "unit": "{item}"},
        {"name": "context.tokens", "type": "histogram", "value": 80, "unit": "{token}"},
        {"name": "bad", "type": "summary", "value": 1},
        {"name": "negative", "type": "counter", "value": -1},
        {"type": "gauge", "value": 1},
    ]  # fmt: skip
    answer = (await client.post("/api/v1/ingest/metrics", json={"metrics": metrics})).json()
    assert answer["accepted"] == 4
    reasons = {item["index"]: item["reason"] for item in answer["rejected"]}
    assert set(reasons) == {4, 5, 6}
    assert "type" in reasons[4] and "negative" in reasons[5] and "name" in reasons[6]

    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    counter = await db.fetch(
        "SELECT s.type, s.temporality, s.is_monotonic, s.service_name, s.attributes, p.value "
        "FROM metric_points p JOIN metric_series s USING (project_id, series_id) "
        "WHERE p.project_id = $1 AND s.name = $2 ORDER BY p.time",
        project_id,
        name,
    )
    assert [row["value"] for row in counter] == [2.0, 3.0]
    assert (counter[0]["type"], counter[0]["temporality"], counter[0]["is_monotonic"]) == (
        "sum", 1, True,
    )  # fmt: skip
    assert counter[0]["service_name"] == "agent"
    histogram = await db.fetchrow(
        "SELECT p.count, p.sum, p.explicit_bounds, p.bucket_counts FROM metric_points p "
        "JOIN metric_series s USING (project_id, series_id) "
        "WHERE p.project_id = $1 AND s.name = 'context.tokens'",
        project_id,
    )
    assert histogram["count"] == 1 and histogram["sum"] == 80.0
    # 80 falls in (75, 100]: the seventh bucket.
    assert histogram["bucket_counts"][6] == 1 and sum(histogram["bucket_counts"]) == 1


async def test_native_metrics_series_limit_rejects_by_index(start_collector, make_key) -> None:
    collector = start_collector(env={"TELEMETRY_MAX_SERIES_PER_METRIC": "2"})
    key = await make_key(f"limits-{uuid.uuid4().hex[:6]}", "ingest")
    metrics = [
        {"name": "per.user", "type": "gauge", "value": 1, "attributes": {"user": f"u{i}"}}
        for i in range(4)
    ]
    async with httpx.AsyncClient(base_url=collector.url, headers={"x-api-key": key}) as http:
        answer = (await http.post("/api/v1/ingest/metrics", json={"metrics": metrics})).json()
    assert answer["accepted"] == 2
    assert [item["index"] for item in answer["rejected"]] == [2, 3]
    assert "2-series limit" in answer["rejected"][0]["reason"]
