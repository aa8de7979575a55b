"""Planner statistics and dead rows of the day partitions being filled, kept in check.

A partition created today has no statistics until autovacuum's ANALYZE reaches it, and
autovacuum visits each database once per `autovacuum_naptime`, later on a server with
many databases or a busy one (a bench database went 10 minutes without a visit): the
planner then guesses row counts from defaults and may pick an index that reads the whole
window (a trace search over fresh data took seconds that way). And rollup compaction
rewrites every row it merges, so until a VACUUM the rollup partitions hold a dead row
per row appended at ingest: a 24 h overview read 57,000 pages for 1,430 live rows.

Each round, for the partitions of the tables below:
- ANALYZE when never analyzed and holding rows, or when the rows changed since its last
  ANALYZE reach a fifth of what it held then (so a partition filling all day is analyzed
  about log(rows) / log(1.2) times, ever less often, each a sample of 30,000 rows at most),
  and at most once every `ANALYZE_EVERY_S` per partition: a partition filling fast grows by
  a fifth in every round of its first minutes, and an ANALYZE of a spans partition costs
  PostgreSQL about 0.8 s of CPU (a sample of 30,000 rows, their jsonb columns sorted),
  which at 20,000 spans/s was a tenth of what PostgreSQL spent ingesting them. The planner
  scales a partition's row count by its current size between ANALYZEs, so a minute-old
  sample of the same traffic still estimates right;
- VACUUM when its dead rows reach a fifth of its live ones (the rollups and the operation
  catalog, which are rewritten; spans and logs are only appended), and error events when
  the rows appended since its last VACUUM reach a fifth of what it held (their count per
  window is then read from the index alone).
Both at least `MIN_ROWS` rows apart, so small partitions are not worked on every round.
"""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.partitions import partition_pattern_matches

log = logging.getLogger(__name__)

MAINTAINED_TABLES = (
    "spans",
    "span_rollups",
    "span_operations",
    "logs",
    "error_events",
    "error_minutes",
)
# Also VACUUMed as rows are appended, so that counting them is an index-only scan: the
# overview counts a window's error events (28,000 heap fetches, 228 ms, at 24 h of a
# million spans before; spans are left out: a VACUUM also reads their whole GIN index).
VACUUMED_ON_INSERT = ("error_events",)
MIN_ROWS = 1000
SHARE = 0.2
ANALYZE_EVERY_S = 60.0

_STALE = text(
    """
    SELECT c.relname AS name, p.relname AS parent,
           s.n_mod_since_analyze >= :least
             AND (c.reltuples < 0 OR s.n_mod_since_analyze >= :share * c.reltuples)
             AND coalesce(greatest(s.last_analyze, s.last_autoanalyze)
                   <= now() - make_interval(secs => :every), true)
             AS analyze,
           (s.n_dead_tup >= :least AND s.n_dead_tup >= :share * s.n_live_tup)
             OR (p.relname = ANY(:on_insert) AND s.n_ins_since_vacuum >= :least
                 AND s.n_ins_since_vacuum >= :share * greatest(c.reltuples, 0)) AS vacuum
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE p.relname = ANY(:tables)
    ORDER BY c.relname
    """
)


async def maintain_partitions(
    engine: AsyncEngine, analyze_every_s: float = ANALYZE_EVERY_S
) -> list[str]:
    """VACUUM and/or ANALYZE the partitions that need it; returns what was done."""
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                _STALE,
                {
                    "tables": list(MAINTAINED_TABLES),
                    "on_insert": list(VACUUMED_ON_INSERT),
                    "least": MIN_ROWS,
                    "share": SHARE,
                    "every": analyze_every_s,
                },
            )
        ).all()
    done = []
    for row in rows:
        if not (row.analyze or row.vacuum):
            continue
        # The name came from pg_inherits and matched the partition pattern of its parent.
        if not partition_pattern_matches(row.name, row.parent):
            continue
        if row.vacuum:
            command = f'VACUUM (ANALYZE) "{row.name}"' if row.analyze else f'VACUUM "{row.name}"'
        else:
            command = f'ANALYZE "{row.name}"'
        async with engine.connect() as connection:
            # VACUUM cannot run inside a transaction.
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(command))
        done.append(command)
    if done:
        log.info("maintained partitions", extra={"commands": done})
    return done
