"""Migration 0010 fills `error_minutes` from the error events already stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from alembic import command
from sqlalchemy import make_url
from support import _admin, drop_test_database

from app.db.engine import asyncpg_dsn
from app.db.migrate import alembic_config

COUNT_PER_KEY = """
    SELECT project_id, date_trunc('minute', time, 'UTC') AS minute, service_name, count(*)
    FROM error_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
COUNTED = """
    SELECT project_id, minute, service_name, sum(event_count)
    FROM error_minutes GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""


async def test_upgrade_counts_existing_events_per_minute(server_url: str) -> None:
    name = f"telemetry_test_{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(_admin, server_url, f'CREATE DATABASE "{name}"')
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0009")
        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            now = datetime.now(UTC)
            days = [now.date(), (now - timedelta(days=3)).date()]
            for day in days:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                await connection.execute(
                    f'CREATE TABLE "error_events_p{day:%Y%m%d}" PARTITION OF error_events '
                    f"FOR VALUES FROM ('{start.isoformat()}') "
                    f"TO ('{(start + timedelta(days=1)).isoformat()}')"
                )
            rows = []
            for index in range(300):
                moment = now - timedelta(days=3 * (index % 2), seconds=17 * index)
                rows.append(
                    (
                        1 + index % 2,
                        uuid.uuid4().bytes,
                        "fp",
                        moment,
                        ("api", "worker", "db")[index % 3],
                        "T",
                        "m",
                        "",
                        "",
                        "native",
                        None,
                        None,
                        "{}",
                    )
                )
            await connection.copy_records_to_table(
                "error_events",
                records=rows,
                columns=[
                    "project_id",
                    "event_id",
                    "fingerprint",
                    "time",
                    "service_name",
                    "type",
                    "message",
                    "stacktrace",
                    "culprit",
                    "source",
                    "trace_id",
                    "span_id",
                    "attributes",
                ],
            )
            expected = [tuple(row) for row in await connection.fetch(COUNT_PER_KEY)]
        finally:
            await connection.close()

        await asyncio.to_thread(command.upgrade, alembic_config(url), "head")

        connection = await asyncpg.connect(asyncpg_dsn(url))
        try:
            counted = [tuple(row) for row in await connection.fetch(COUNTED)]
            partitions = await connection.fetchval(
                "SELECT count(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
                " WHERE p.relname = 'error_minutes'"
            )
        finally:
            await connection.close()
        assert counted == expected and sum(row[3] for row in counted) == 300
        assert partitions == 2
    finally:
        await asyncio.to_thread(drop_test_database, url)
