"""Planner statistics of the day partitions being filled, kept fresh by the collector.

A partition created today has no statistics until autovacuum's ANALYZE reaches it, and
autovacuum visits each database once per `autovacuum_naptime`, later on a server with
many databases or a busy one: meanwhile the planner guesses row counts from defaults and
may pick an index that reads the whole window (a trace search over fresh data took
seconds that way). This job ANALYZEs a partition of the searched tables when it has
never been analyzed and holds rows, or when the rows changed since its last ANALYZE
reach a fifth of what it held then: a partition filling all day is analyzed about
`log(rows) / log(1.2)` times, ever less often, each a sample of at most 30,000 rows.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.partitions import partition_pattern_matches

log = logging.getLogger(__name__)

ANALYZED_TABLES = ("spans", "span_rollups", "span_operations", "logs")
MIN_CHANGED_ROWS = 1000
CHANGED_SHARE = 0.2

_STALE = text(
    """
    SELECT c.relname AS name, p.relname AS parent
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE p.relname = ANY(:tables)
      AND s.n_mod_since_analyze >= :least
      AND (c.reltuples < 0 OR s.n_mod_since_analyze >= :share * c.reltuples)
    ORDER BY c.relname
    """
)


async def analyze_stale_partitions(engine: AsyncEngine) -> list[str]:
    """ANALYZE the partitions whose statistics lag their rows; returns their names."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                _STALE,
                {
                    "tables": list(ANALYZED_TABLES),
                    "least": MIN_CHANGED_ROWS,
                    "share": CHANGED_SHARE,
                },
            )
        ).all()
    analyzed = []
    for row in rows:
        # The name came from pg_inherits and matched the partition pattern of its parent.
        if not partition_pattern_matches(row.name, row.parent):
            continue
        async with engine.connect() as connection:
            await connection.execute(text(f'ANALYZE "{row.name}"'))
            await connection.commit()
        analyzed.append(row.name)
    if analyzed:
        log.info("analyzed partitions", extra={"partitions": analyzed})
    return analyzed
