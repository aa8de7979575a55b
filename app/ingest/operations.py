"""The operation catalog: spans per minute, service, span name and kind, counted at ingest.

The writer calls `upsert_operations` (through `SPANS_HOOK`) with exactly the span rows
it inserted, in their transaction, so each span is counted once, late data included. A
batch adds one row per distinct key, sorted: concurrent flushes lock shared keys in the
same order (no deadlock), and a flush waits only for another's commit on those keys.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import asyncpg

from app.db.tables import SPAN_COLUMNS
from app.domain.records import STATUS_ERROR
from app.ingest.rollups import append_rollups
from app.ingest.writer import InsertHook

_at = {name: index for index, name in enumerate(SPAN_COLUMNS)}
_PROJECT = _at["project_id"]
_START = _at["start_time"]
_SERVICE = _at["service_name"]
_NAME = _at["name"]
_KIND = _at["kind"]
_STATUS = _at["status_code"]

OperationKey = tuple[int, datetime, str, str, int]

# A constant statement; every value is a bound array parameter.
_UPSERT = """
INSERT INTO span_operations
    (project_id, minute, service_name, name, kind, span_count, error_count)
SELECT * FROM unnest(
    $1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::smallint[],
    $6::bigint[], $7::bigint[]
)
ON CONFLICT (project_id, minute, service_name, name, kind) DO UPDATE SET
    span_count = span_operations.span_count + excluded.span_count,
    error_count = span_operations.error_count + excluded.error_count
"""


def operation_counts(span_rows: list[tuple[Any, ...]]) -> list[tuple[OperationKey, int, int]]:
    """(key, spans, errors) per distinct key of the rows, sorted by key."""
    totals: dict[OperationKey, list[int]] = {}
    for row in span_rows:
        key = (
            row[_PROJECT],
            row[_START].replace(second=0, microsecond=0),
            row[_SERVICE],
            row[_NAME],
            row[_KIND],
        )
        total = totals.get(key)
        if total is None:
            total = totals[key] = [0, 0]
        total[0] += 1
        total[1] += row[_STATUS] == STATUS_ERROR
    return [(key, spans, errors) for key, (spans, errors) in sorted(totals.items())]


async def upsert_operations(
    connection: asyncpg.Connection, span_rows: list[tuple[Any, ...]]
) -> None:
    # On a thread, as the rollups: a 20,000-span flush is milliseconds of CPU.
    counts = await asyncio.to_thread(operation_counts, span_rows)
    if not counts:
        return
    columns: list[list[Any]] = [[] for _ in range(7)]
    for key, spans, errors in counts:
        for column, value in zip(columns, (*key, spans, errors), strict=True):
            column.append(value)
    await connection.execute(_UPSERT, *columns)


async def after_spans(connection: asyncpg.Connection, span_rows: list[tuple[Any, ...]]) -> None:
    """Everything written beside new spans: dashboard rollups, then the operation catalog
    (last, so the catalog's row locks are held only until the commit)."""
    await append_rollups(connection, span_rows)
    await upsert_operations(connection, span_rows)


SPANS_HOOK = InsertHook(
    ("project_id", "trace_id", "span_id", "start_time"),
    after_spans,
    partitioned_tables=("span_rollups", "span_operations"),
)
