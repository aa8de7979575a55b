"""Retention: drop whole day partitions once every row in them is past its signal's retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.partitions import PartitionManager, list_partitions

log = logging.getLogger(__name__)

RETENTION_OF = {
    "spans": "retention_traces",
    "span_rollups": "retention_traces",
    "logs": "retention_logs",
    "metric_points": "retention_metrics",
    "error_events": "retention_errors",
}


async def drop_expired(
    engine: AsyncEngine,
    settings: Settings,
    partitions: PartitionManager | None = None,
    now: datetime | None = None,
) -> list[str]:
    now = now or datetime.now(UTC)
    dropped = []
    for table, setting in RETENTION_OF.items():
        horizon = now - timedelta(seconds=settings.seconds(setting))
        for name, day in await list_partitions(engine, table):
            day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            if day_end > horizon:
                continue
            async with engine.begin() as connection:
                # The name came from pg_inherits and matched the partition pattern.
                await connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))
            if partitions is not None:
                partitions.forget(table, day)
            dropped.append(name)
            log.info("dropped expired partition", extra={"partition": name})
    return dropped
