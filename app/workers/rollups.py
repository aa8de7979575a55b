"""Rollup compaction: a minute's rows merged into one per key, and folded into its hour.

Idempotent and safe beside ingest: in one transaction a round deletes a chunk of settled
minutes' rows, inserts their merge per key (marked `compacted`) and appends to
`span_rollups_hourly` the sums of the rows not compacted before. So at every snapshot a
compacted minute row is counted in its hour and an uncompacted one is not, which is what
long-window readers rely on (app/query/span_stats.py). Rows committed meanwhile are not
seen by the delete and are merged in a later round. Then the hours a round touched get
their appended rows merged per key. Queries sum whatever rows exist, so results are the
same before and after compaction.

The merge runs inside PostgreSQL (one statement per chunk of minutes): the rows never
travel to Python, and the rows appended since the last round are aggregated once, per
minute, before being added to the minute's compacted row and to its hour. The job runs
every 5 s (`TELEMETRY_ROLLUP_INTERVAL`), so the uncompacted tail that reads must sum row by
row stays a few seconds of ingest, whatever the data's timestamps: live traffic settles a
minute a minute (a few rows per round); a client backfilling a day makes every round merge
what it sent meanwhile (353,000 rows, a day of 1M spans, took 13.6 s in one round on a
loaded machine, against 20.1 s for merging raw rows twice and the DELETE that scanned a
project's whole index per minute; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import span_rollups

# Minutes still receiving data are left alone; late data is merged in a later round.
SETTLE = timedelta(minutes=2)
MINUTES_PER_TRANSACTION = 200
# About 0.5 s of PostgreSQL per statement on this project's 2-core machine (10 s on a busy
# one would meet TELEMETRY_DB_STATEMENT_TIMEOUT_S; a backfilled day of 10M spans holds
# about 2,500 rows a minute, 500,000 in 200 minutes).
ROWS_PER_TRANSACTION = 20_000

_KEYS = "project_id, category, service_name, model, provider, tool"
_SUMS = """
    sum(count) AS count, sum(error_count) AS error_count,
    sum(duration_ms_sum) AS duration_ms_sum, sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens,
    sum(cost_usd) AS cost_usd
"""
_COLUMNS = """
    count, error_count, duration_ms_sum, input_tokens, output_tokens, cache_read_tokens,
    cost_usd, sketch_index, sketch_count
"""


_MERGES = {("fresh", "minute"), ("together", "minute"), ("hours", "hour"), ("removed", "hour")}


def _merged(source: str, period: str) -> str:
    """SELECT of `source`'s rows merged per (`period`, key): sums, and sketches added per
    bucket (sorted index/count arrays, as app/domain/sketch.py `to_arrays`). Called at
    import with the CTE names below only: no input ever reaches this text."""
    if (source, period) not in _MERGES:
        raise ValueError(f"unknown merge {source!r} per {period!r}")
    return f"""
        SELECT t.{period}, t.project_id, t.category, t.service_name, t.model, t.provider,
               t.tool, t.count, t.error_count, t.duration_ms_sum, t.input_tokens,
               t.output_tokens, t.cache_read_tokens, t.cost_usd,
               coalesce(s.sketch_index, '{{}}') AS sketch_index,
               coalesce(s.sketch_count, '{{}}') AS sketch_count
        FROM (SELECT {period}, {_KEYS}, {_SUMS} FROM {source} GROUP BY {period}, {_KEYS}) AS t
        LEFT JOIN (
            SELECT {period}, {_KEYS}, array_agg(idx ORDER BY idx) AS sketch_index,
                   array_agg(cnt ORDER BY idx) AS sketch_count
            FROM (
                SELECT {period}, {_KEYS}, b.idx, sum(b.cnt) AS cnt
                FROM {source}, unnest(sketch_index, sketch_count) AS b(idx, cnt)
                GROUP BY {period}, {_KEYS}, b.idx
            ) AS buckets
            GROUP BY {period}, {_KEYS}
        ) AS s USING ({period}, {_KEYS})
    """  # noqa: S608 - constant names, checked above


# A chunk's sort of (key, bucket) pairs fits in memory (the default 4 MB spilled to disk).
_WORK_MEM = text("SET LOCAL work_mem = '64MB'")

# Constant SQL (built once from the constants above); minutes and hours are bound arrays.
_COMPACT_MINUTES = text(
    f"""
    WITH removed AS (
        DELETE FROM span_rollups
        WHERE (project_id, category, minute) IN (
            SELECT chunk.project_id, categories.category, chunk.minute
            FROM unnest(CAST(:projects AS bigint[]), CAST(:minutes AS timestamptz[]))
                AS chunk(project_id, minute),
                (VALUES (1), (2), (3)) AS categories(category)
        )
        RETURNING *
    ),
    fresh AS (SELECT * FROM removed WHERE NOT compacted),
    fresh_minutes AS ({_merged("fresh", "minute")}),
    together AS (
        SELECT minute, {_KEYS}, {_COLUMNS} FROM fresh_minutes
        UNION ALL
        SELECT minute, {_KEYS}, {_COLUMNS} FROM removed WHERE compacted
    ),
    hours AS (SELECT date_trunc('hour', minute, 'UTC') AS hour, * FROM fresh_minutes),
    minutes AS (
        INSERT INTO span_rollups (minute, {_KEYS}, {_COLUMNS}, compacted)
        SELECT *, true FROM ({_merged("together", "minute")}) AS merged
    )
    INSERT INTO span_rollups_hourly (hour, {_KEYS}, {_COLUMNS})
    {_merged("hours", "hour")}
    """  # noqa: S608 - constant text, no input
)

_COMPACT_HOURS = text(
    f"""
    WITH removed AS (
        DELETE FROM span_rollups_hourly
        WHERE (project_id, hour) IN (
            SELECT * FROM unnest(CAST(:projects AS bigint[]), CAST(:hours AS timestamptz[]))
        )
        RETURNING *
    )
    INSERT INTO span_rollups_hourly (hour, {_KEYS}, {_COLUMNS})
    {_merged("removed", "hour")}
    """  # noqa: S608 - constant text, no input
)


def chunks(targets: Sequence[Row[Any]], max_rows: int) -> list[list[Row[Any]]]:
    """(project, minute, rows) targets in runs of at most MINUTES_PER_TRANSACTION minutes
    and `max_rows` rows (a minute holding more is a run of its own): each statement stays
    well inside the statement timeout, however many rows a backfill appended to a minute."""
    found: list[list[Row[Any]]] = []
    rows = 0
    for target in targets:
        if not found or len(found[-1]) >= MINUTES_PER_TRANSACTION or rows + target.rows > max_rows:
            found.append([])
            rows = 0
        found[-1].append(target)
        rows += target.rows
    return found


async def compact_rollups(
    engine: AsyncEngine, max_minutes: int = 5000, max_rows: int = ROWS_PER_TRANSACTION
) -> int:
    """Compact up to `max_minutes` (project, minute) pairs; returns how many were merged."""
    r = span_rollups.c
    async with engine.connect() as connection:
        targets = (
            await connection.execute(
                select(r.project_id, r.minute, func.count().label("rows"))
                .where(r.compacted.is_(False), r.minute < func.now() - SETTLE)
                .group_by(r.project_id, r.minute)
                .limit(max_minutes)
            )
        ).all()
    hours = sorted(
        {(row.project_id, row.minute.replace(minute=0, second=0, microsecond=0)) for row in targets}
    )
    for chunk in chunks(targets, max_rows):
        async with engine.begin() as connection:
            await connection.execute(_WORK_MEM)
            await connection.execute(
                _COMPACT_MINUTES,
                {
                    "projects": [row.project_id for row in chunk],
                    "minutes": [row.minute for row in chunk],
                },
            )
    for start in range(0, len(hours), MINUTES_PER_TRANSACTION):
        chunk_hours = hours[start : start + MINUTES_PER_TRANSACTION]
        async with engine.begin() as connection:
            await connection.execute(_WORK_MEM)
            await connection.execute(
                _COMPACT_HOURS,
                {
                    "projects": [project for project, _ in chunk_hours],
                    "hours": [hour for _, hour in chunk_hours],
                },
            )
    return len(targets)
