"""Retention: drop whole day partitions once every row in them is past its table's horizon.

Horizons: each signal's retention setting for its raw data (spans, logs, metric points,
error events). Aggregates outlive raw data: per-minute dashboard rollups are kept
max(retention_traces, the longest SLO window) (their hourly sums, span_rollups_hourly, by
DELETE) and SLO counts (slo_minutes; slo_hours by DELETE) the longest SLO window, at least
3 days (the longest burn-rate window), so SLO windows and dashboards stay complete whatever
the spans' retention. Error groups are not partitioned: a group keeps its count and
first/last seen after its events are dropped.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, delete, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.partitions import PartitionManager, list_partitions
from app.db.tables import slo_hours, span_rollups_hourly
from app.domain.error_budget import BURN_RATE_WINDOWS
from app.store.slos import longest_window_s

log = logging.getLogger(__name__)

RETENTION_OF = {
    "spans": "retention_traces",
    "logs": "retention_logs",
    "metric_points": "retention_metrics",
    "error_events": "retention_errors",
    # The services list adds these counts to raw spans at the window's edges: both go
    # together, so the list is the same whichever it reads.
    "span_operations": "retention_traces",
    # The overview adds these counts to raw error events at the window's edges: kept as
    # long as the events, for the same reason.
    "error_minutes": "retention_errors",
}


async def horizons_s(engine: AsyncEngine, settings: Settings) -> dict[str, float]:
    """How long each partitioned table keeps its rows, in seconds."""
    async with engine.connect() as connection:
        longest_slo_s = await longest_window_s(connection)
    kept = {table: settings.seconds(setting) for table, setting in RETENTION_OF.items()}
    kept["span_rollups"] = max(settings.seconds("retention_traces"), longest_slo_s)
    kept["slo_minutes"] = max(longest_slo_s, max(BURN_RATE_WINDOWS.values()))
    return kept


async def drop_expired(
    engine: AsyncEngine,
    settings: Settings,
    partitions: PartitionManager | None = None,
    now: datetime | None = None,
) -> list[str]:
    now = now or datetime.now(UTC)
    dropped = []
    for table, kept_s in (await horizons_s(engine, settings)).items():
        horizon = now - timedelta(seconds=kept_s)
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
        if table in HOURS_OF:
            await _drop_hours(engine, HOURS_OF[table], horizon)
    return dropped


# Small tables of hourly sums (24 rows a day per key), not partitioned, that go with the
# minute table they summarize: deleted by hour when that table's partitions are dropped.
HOURS_OF = {"slo_minutes": slo_hours, "span_rollups": span_rollups_hourly}


async def _drop_hours(engine: AsyncEngine, hours: Table, horizon: datetime) -> None:
    """Delete the hours the dropped minute partitions covered (whole days before the
    horizon's), so the hourly sums never count data the minutes no longer hold."""
    day = horizon.replace(hour=0, minute=0, second=0, microsecond=0)
    async with engine.begin() as connection:
        await connection.execute(delete(hours).where(hours.c.hour < day))
