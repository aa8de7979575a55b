"""Rollup compaction: merge the rows appended per flush into one row per minute and key.

Idempotent and safe beside ingest: in one transaction it deletes a minute's rows and
inserts their merge; rows committed meanwhile are not seen by the delete and are merged
in a later round. Queries sum whatever rows exist, so results are the same before and
after compaction.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import ROLLUP_COLUMNS, span_rollups
from app.ingest.rollups import merge_rollup_rows

# Minutes still receiving data are left alone; late data is merged in a later round.
SETTLE = timedelta(minutes=2)
MINUTES_PER_TRANSACTION = 200


async def compact_rollups(engine: AsyncEngine, max_minutes: int = 5000) -> int:
    """Compact up to `max_minutes` (project, minute) pairs; returns how many were merged."""
    async with engine.connect() as connection:
        targets = (
            await connection.execute(
                select(span_rollups.c.project_id, span_rollups.c.minute)
                .where(
                    span_rollups.c.compacted.is_(False),
                    span_rollups.c.minute < func.now() - SETTLE,
                )
                .distinct()
                .limit(max_minutes)
            )
        ).all()
    for start in range(0, len(targets), MINUTES_PER_TRANSACTION):
        chunk = [tuple(row) for row in targets[start : start + MINUTES_PER_TRANSACTION]]
        async with engine.begin() as connection:
            removed = (
                (
                    await connection.execute(
                        delete(span_rollups)
                        .where(tuple_(span_rollups.c.project_id, span_rollups.c.minute).in_(chunk))
                        .returning(*span_rollups.c)
                    )
                )
                .mappings()
                .all()
            )
            merged = merge_rollup_rows(list(removed))
            raw = (await connection.get_raw_connection()).driver_connection
            await raw.copy_records_to_table(
                "span_rollups", records=merged, columns=list(ROLLUP_COLUMNS)
            )
    return len(targets)
