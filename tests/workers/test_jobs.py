"""Background jobs: rollup compaction keeps answers identical, retention drops old days,
and the advisory lock lets one process run a job at a time."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
from sqlalchemy import text

from app.config import Settings
from app.db.engine import asyncpg_dsn
from app.db.partitions import PartitionManager, list_partitions
from app.workers.retention import drop_expired
from app.workers.rollups import compact_rollups
from app.workers.runner import Job, run_once


def _spans(minutes_ago: float, count: int, model: str) -> list[dict]:
    start = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    trace = uuid.uuid4().hex
    return [
        {
            "trace_id": trace,
            "span_id": f"{index + 1:016x}",
            "name": "chat",
            "service": "agent",
            "kind": "server" if index == 0 else "client",
            "parent_span_id": None if index == 0 else f"{1:016x}",
            "start_time": (start + timedelta(seconds=index)).isoformat(),
            "duration_ms": 10.0 * (index + 1),
            "status": "error" if index % 3 == 0 else "ok",
            "attributes": {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": 100},
        }
        for index in range(count)
    ]


async def test_compaction_merges_rows_and_keeps_answers(client, engine, db, project_name):
    for _ in range(3):  # three requests → several rollup rows per minute and key
        body = {"spans": _spans(10, 6, "gpt-4o") + _spans(10, 4, "gpt-4o-mini")}
        assert (await client.post("/api/v1/ingest/spans", json=body)).json()["rejected"] == []
    before = (await client.get("/api/v1/dashboard/llm")).json()
    overview_before = (await client.get("/api/v1/dashboard/overview")).json()

    await compact_rollups(engine)
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    rows = await db.fetch(
        "SELECT minute, category, service_name, model, tool, compacted FROM span_rollups "
        "WHERE project_id = $1",
        project_id,
    )
    keys = [(r["minute"], r["category"], r["service_name"], r["model"], r["tool"]) for r in rows]
    assert all(row["compacted"] for row in rows)
    assert len(keys) == len(set(keys)), "one row per minute and key after compaction"
    assert (await client.get("/api/v1/dashboard/llm")).json()["models"] == before["models"]
    overview_after = (await client.get("/api/v1/dashboard/overview")).json()
    for field in ("requests", "error_rate", "latency_ms", "llm"):
        assert overview_after[field] == overview_before[field], field

    # Late data for an already compacted minute is counted, then merged again.
    late = {"spans": _spans(10, 6, "gpt-4o")}
    await client.post("/api/v1/ingest/spans", json=late)
    models = {m["model"]: m for m in (await client.get("/api/v1/dashboard/llm")).json()["models"]}
    # Every span carries a model, the SERVER root too: 6 model calls per trace.
    assert models["gpt-4o"]["requests"] == 3 * 6 + 6
    await compact_rollups(engine)
    again = {m["model"]: m for m in (await client.get("/api/v1/dashboard/llm")).json()["models"]}
    assert again == models


async def test_retention_drops_only_expired_days(engine) -> None:
    partitions = PartitionManager(engine)
    today = datetime.now(UTC).date()
    old, kept = today - timedelta(days=10), today - timedelta(days=6)
    await partitions.ensure("spans", [old, kept])
    await partitions.ensure("logs", [old])
    dropped = await drop_expired(engine, Settings(retention_traces="7d"), partitions)
    assert f"spans_p{old:%Y%m%d}" in dropped
    assert f"logs_p{old:%Y%m%d}" not in dropped  # logs keep 30 days
    days = {day for _, day in await list_partitions(engine, "spans")}
    assert old not in days and kept in days and today in days
    assert old in {day for _, day in await list_partitions(engine, "logs")}


async def test_job_runs_in_one_process_at_a_time(engine, database_url) -> None:
    runs: list[str] = []

    async def work(_: object) -> None:
        runs.append("ran")

    job = Job(f"test-{uuid.uuid4().hex[:6]}", 60, work)
    holder = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", job.lock_id)
        assert await run_once(engine, job) is False
        assert runs == []
        await holder.execute("SELECT pg_advisory_unlock($1)", job.lock_id)
        assert await run_once(engine, job) is True
        assert runs == ["ran"]
    finally:
        await holder.close()
    async with engine.connect() as connection:  # the lock was released after the run
        assert await connection.scalar(
            text("SELECT pg_try_advisory_lock(:id)"), {"id": job.lock_id}
        )
        await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": job.lock_id})


async def test_retention_keeps_the_day_that_holds_the_horizon(engine) -> None:
    """Data is kept for at least its retention: the day the horizon falls in stays whole.

    Days in 2001, far behind every other test's data, so only this test's partitions are
    past the horizon of its `now`.
    """
    partitions = PartitionManager(engine)
    settings = Settings(retention_traces="7d", retention_logs="7d")
    boundary, before = date(2001, 3, 3), date(2001, 3, 2)
    for table in ("spans", "logs"):
        await partitions.ensure(table, [before, boundary])
    # Horizon 2001-03-03 12:00: the boundary day holds data younger than 7 days.
    await drop_expired(engine, settings, partitions, now=datetime(2001, 3, 10, 12, tzinfo=UTC))
    for table in ("spans", "logs"):
        days = {day for _, day in await list_partitions(engine, table)}
        assert boundary in days, f"{table}: the day holding the horizon was dropped"
        assert before not in days, f"{table}: a day wholly past the horizon was kept"
    # Horizon exactly at the boundary day's start: nothing in it is older than 7 days yet.
    await drop_expired(engine, settings, partitions, now=datetime(2001, 3, 10, tzinfo=UTC))
    assert boundary in {day for _, day in await list_partitions(engine, "spans")}
    # Once the horizon reaches the day's end, the whole day is past it.
    await drop_expired(engine, settings, partitions, now=datetime(2001, 3, 11, tzinfo=UTC))
    assert boundary not in {day for _, day in await list_partitions(engine, "spans")}
