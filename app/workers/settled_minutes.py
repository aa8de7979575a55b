"""The compaction round of the per-minute count tables (`span_operations`, `error_minutes`).

Each table's merge statement deletes the rows of a chunk of settled minutes and inserts
their sums, in one transaction, so readers, which sum every row of a key, answer the same
before and after; rows committed meanwhile are merged in a later round.
"""

from __future__ import annotations

from sqlalchemy import Table, TextClause, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.workers.rollups import MINUTES_PER_TRANSACTION, SETTLE


async def merge_settled_minutes(
    engine: AsyncEngine, table: Table, merge: TextClause, max_minutes: int
) -> int:
    """Run `merge` (bound `:projects`, `:minutes`) over up to `max_minutes` settled
    (project, minute) pairs with uncompacted rows; returns how many were merged."""
    c = table.c
    async with engine.connect() as connection:
        targets = (
            await connection.execute(
                select(c.project_id, c.minute)
                .where(c.compacted.is_(False), c.minute < func.now() - SETTLE)
                .distinct()
                .limit(max_minutes)
            )
        ).all()
    for start in range(0, len(targets), MINUTES_PER_TRANSACTION):
        chunk = targets[start : start + MINUTES_PER_TRANSACTION]
        async with engine.begin() as connection:
            await connection.execute(
                merge,
                {
                    "projects": [row.project_id for row in chunk],
                    "minutes": [row.minute for row in chunk],
                },
            )
    return len(targets)
