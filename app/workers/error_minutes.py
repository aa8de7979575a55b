"""Error-minute compaction: a minute's `error_minutes` rows merged into one per service.

As operation compaction (app/workers/operations.py): in one transaction it deletes the
rows of settled minutes and inserts their sums, so readers, which sum every row of a
key, answer the same before and after; rows committed meanwhile are merged in a later
round.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import error_minutes
from app.workers.settled_minutes import merge_settled_minutes

# Constant SQL; the minutes are a bound parameter.
_MERGE = text(
    """
    WITH removed AS (
        DELETE FROM error_minutes
        WHERE (project_id, minute) IN (
            SELECT * FROM unnest(CAST(:projects AS bigint[]), CAST(:minutes AS timestamptz[]))
        )
        RETURNING *
    )
    INSERT INTO error_minutes (project_id, minute, service_name, event_count, compacted)
    SELECT project_id, minute, service_name, sum(event_count), true
    FROM removed
    GROUP BY project_id, minute, service_name
    """
)


async def compact_error_minutes(engine: AsyncEngine, max_minutes: int = 5000) -> int:
    """Compact up to `max_minutes` (project, minute) pairs; returns how many were merged."""
    return await merge_settled_minutes(engine, error_minutes, _MERGE, max_minutes)
