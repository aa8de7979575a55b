"""The demo command sends traces, logs, metrics and errors that the API then shows."""

from __future__ import annotations

from app.demo import run_demo


async def test_demo_populates_every_signal(client, key, collector, db, project_name) -> None:
    assert run_demo(collector.url, key, conversations=12, seed=3) == 0
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    spans = await db.fetchval("SELECT count(*) FROM spans WHERE project_id = $1", project_id)
    logs = await db.fetchval("SELECT count(*) FROM logs WHERE project_id = $1", project_id)
    points = await db.fetchval(
        "SELECT count(*) FROM metric_points WHERE project_id = $1", project_id
    )
    assert spans > 12 * 4 and logs >= 12 and points > 0
    overview = (await client.get("/api/v1/dashboard/overview")).json()
    assert overview["requests"] == 12
    assert overview["llm"]["cost_usd"] > 0 and overview["llm"]["input_tokens"] > 0
    models = (await client.get("/api/v1/dashboard/llm")).json()["models"]
    assert {item["provider"] for item in models} <= {"anthropic", "openai", "gcp.gemini"}
    assert len(models) >= 2
