"""Data lifetime: aggregates outlive raw data. Rollups and SLO minute counts are kept for
the longest SLO window whatever the spans' retention; error groups keep their counts and
first/last seen after their events are dropped; /metrics reports sizes and ages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client import REGISTRY
from slo_kit import make_slo
from sqlalchemy import delete, insert, select

from app.auth import ensure_project
from app.config import Settings
from app.db.partitions import PartitionManager, list_partitions
from app.db.tables import slo_hours, slos, span_rollups_hourly
from app.workers.retention import drop_expired, horizons_s
from app.workers.storage_stats import record_storage_stats

DAY = 86_400


async def test_rollups_and_slo_minutes_are_kept_for_the_longest_slo_window(engine) -> None:
    project_id = await ensure_project(engine, "lifetime")
    slo = await make_slo(engine, project_id, window="45d")
    try:
        settings = Settings(retention_traces="7d")
        kept = await horizons_s(engine, settings)
        assert kept["spans"] == 7 * DAY
        assert kept["span_rollups"] >= 45 * DAY  # other tests' SLOs may be longer
        assert kept["slo_minutes"] >= 45 * DAY
        partitions = PartitionManager(engine)
        today = datetime.now(UTC).date()
        inside, past = today - timedelta(days=40), today - timedelta(days=100)  # 90d at most
        for table in ("spans", "span_rollups", "slo_minutes"):
            await partitions.ensure(table, [inside, past])
        hours = [datetime(day.year, day.month, day.day, 5, tzinfo=UTC) for day in (inside, past)]
        async with engine.begin() as connection:
            await connection.execute(
                insert(slo_hours),
                [{"slo_id": slo.id, "hour": h, "good": 1, "total": 1} for h in hours],
            )
            # The hourly sums of the rollups go with their minute partitions.
            await connection.execute(
                insert(span_rollups_hourly),
                [
                    {
                        "project_id": project_id,
                        "hour": h,
                        "category": 1,
                        "service_name": "s",
                        "model": "",
                        "provider": "",
                        "tool": "",
                        "count": 1,
                        "error_count": 0,
                        "duration_ms_sum": 1.0,
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cache_read_tokens": 0,
                        "cost_usd": 0.0,
                        "sketch_index": [0],
                        "sketch_count": [1],
                    }  # fmt: skip
                    for h in hours
                ],
            )
        dropped = await drop_expired(engine, settings, partitions)
        async with engine.connect() as connection:
            kept_hours = await connection.scalars(
                select(slo_hours.c.hour).where(slo_hours.c.slo_id == slo.id)
            )
            assert list(kept_hours) == hours[:1]
            kept_rollup_hours = await connection.scalars(
                select(span_rollups_hourly.c.hour).where(
                    span_rollups_hourly.c.project_id == project_id
                )
            )
            assert list(kept_rollup_hours) == hours[:1]
        for table in ("span_rollups", "slo_minutes"):
            assert f"{table}_p{past:%Y%m%d}" in dropped
            assert inside in {day for _, day in await list_partitions(engine, table)}
        assert f"spans_p{inside:%Y%m%d}" in dropped  # raw spans keep 7 days only
    finally:
        async with engine.begin() as connection:
            await connection.execute(delete(slos).where(slos.c.id == slo.id))


async def test_error_groups_outlive_their_events(client, engine) -> None:
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    error = {
        "type": "ToolTimeout",
        "message": "search_code timed out",
        "service": "lifetime-agent",
        "timestamp": ten_days_ago.isoformat(),
    }
    # Two occurrences (an identical item twice would be one event sent twice).
    again = {**error, "timestamp": (ten_days_ago + timedelta(seconds=1)).isoformat()}
    response = await client.post("/api/v1/ingest/errors", json={"errors": [error, again]})
    assert response.json()["accepted"] == 2, response.text
    fingerprint = response.json()["fingerprints"][0]["fingerprint"]
    before = (await client.get(f"/api/v1/errors/{fingerprint}")).json()

    dropped = await drop_expired(engine, Settings(retention_errors="9d"), PartitionManager(engine))
    assert f"error_events_p{ten_days_ago:%Y%m%d}" in dropped

    after = (await client.get(f"/api/v1/errors/{fingerprint}")).json()
    assert after["count"] == before["count"] == 2
    assert (after["first_seen"], after["last_seen"]) == (before["first_seen"], before["last_seen"])
    listed = (await client.get("/api/v1/errors", params={"start": "now-30d"})).json()["errors"]
    assert fingerprint in {group["fingerprint"] for group in listed}


def _sample(name: str, table: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"table": table})


async def test_storage_gauges(engine, collector) -> None:
    partitions = PartitionManager(engine)
    oldest = datetime.now(UTC).date() - timedelta(days=80)  # older than any other test's
    await partitions.ensure("slo_minutes", [oldest])
    now = datetime.now(UTC)
    await record_storage_stats(engine, now)
    start = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC)
    assert _sample("telemetry_oldest_partition_age_seconds", "slo_minutes") == (
        (now - start).total_seconds()
    )
    assert _sample("telemetry_table_bytes", "spans") > 0
    assert _sample("telemetry_table_bytes", "projects") > 0
    assert _sample("telemetry_table_rows", "projects") is not None

    # The collector's own job (run at start, then every minute) exposes them too.
    async with httpx.AsyncClient(base_url=collector.url) as http:
        for _ in range(100):
            text = (await http.get("/metrics")).text
            if 'telemetry_oldest_partition_age_seconds{table="spans"}' in text:
                break
            await asyncio.sleep(0.1)
    assert 'telemetry_table_bytes{table="spans"}' in text
    assert 'telemetry_table_rows{table="error_groups"}' in text
