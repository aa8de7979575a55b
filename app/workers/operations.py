"""Operation catalog compaction: a minute's `span_operations` rows merged into one per key.

As rollup compaction (app/workers/rollups.py): in one transaction it deletes the rows of
settled minutes and inserts their sums, so readers, which sum every row of a key, answer
the same before and after; rows committed meanwhile are merged in a later round.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import span_operations
from app.workers.settled_minutes import merge_settled_minutes

# Constant SQL; the minutes are a bound parameter.
_MERGE = text(
    """
    WITH removed AS (
        DELETE FROM span_operations
        WHERE (project_id, minute) IN (
            SELECT * FROM unnest(CAST(:projects AS bigint[]), CAST(:minutes AS timestamptz[]))
        )
        RETURNING *
    )
    INSERT INTO span_operations
        (project_id, minute, service_name, name, kind, span_count, error_count, compacted)
    SELECT project_id, minute, service_name, name, kind, sum(span_count), sum(error_count), true
    FROM removed
    GROUP BY project_id, minute, service_name, name, kind
    """
)


async def compact_operations(engine: AsyncEngine, max_minutes: int = 5000) -> int:
    """Compact up to `max_minutes` (project, minute) pairs; returns how many were merged."""
    return await merge_settled_minutes(engine, span_operations, _MERGE, max_minutes)
