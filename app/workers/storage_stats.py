"""The "storage-stats" job: rows and bytes per table and the age of each table's oldest
day partition, as gauges on /metrics (app/telemetry.py).

Rows are PostgreSQL's estimate (`reltuples`, kept by autovacuum and ANALYZE; 0 until a
table was first analysed), bytes are `pg_total_relation_size` (heap, indexes and TOAST),
both summed over a partitioned table's partitions. Cheap: catalog reads only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.partitions import PARTITIONED_TABLES, list_partitions
from app.db.tables import metadata
from app.telemetry import OLDEST_PARTITION_AGE, TABLE_BYTES, TABLE_ROWS

_SIZES = text(
    """
    WITH leaves AS (
        SELECT t.name, tree.relid AS oid
        FROM unnest(CAST(:names AS text[])) AS t(name)
        CROSS JOIN LATERAL pg_partition_tree(to_regclass(t.name)) AS tree
        WHERE tree.isleaf
        UNION ALL
        SELECT t.name, c.oid
        FROM unnest(CAST(:names AS text[])) AS t(name)
        JOIN pg_class c ON c.oid = to_regclass(t.name)
        WHERE c.relkind = 'r'
    )
    SELECT leaves.name,
           sum(greatest(c.reltuples, 0))::bigint AS row_count,
           sum(pg_total_relation_size(leaves.oid))::bigint AS byte_count
    FROM leaves JOIN pg_class c ON c.oid = leaves.oid
    GROUP BY leaves.name
    """
)


async def record_storage_stats(engine: AsyncEngine, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    names = sorted(metadata.tables)
    async with engine.connect() as connection:
        sizes = {row.name: row for row in await connection.execute(_SIZES, {"names": names})}
    for name in names:
        row = sizes.get(name)
        TABLE_ROWS.labels(name).set(row.row_count if row else 0)
        TABLE_BYTES.labels(name).set(row.byte_count if row else 0)
    for table in sorted(PARTITIONED_TABLES):
        days = await list_partitions(engine, table)
        if days:
            oldest = days[0][1]
            start = datetime(oldest.year, oldest.month, oldest.day, tzinfo=UTC)
            OLDEST_PARTITION_AGE.labels(table).set((now - start).total_seconds())
