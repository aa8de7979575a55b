"""The operation catalog: spans per minute, service, span name and kind, counted at ingest.

The writer calls `append_operations` (through `SPANS_HOOK`) with exactly the span rows it
inserted, in their transaction, so each span is counted once, late data included. A
batch appends one row per distinct key (COPY, no upsert: concurrent flushes never wait
for each other's locks); the compaction job merges a minute's rows into one per key
(app/workers/operations.py), and readers sum whatever rows exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from app.db.tables import OPERATION_COLUMNS, SPAN_COLUMNS
from app.domain.records import STATUS_ERROR
from app.ingest.offload import Steps, drive, in_turns
from app.ingest.rollups import ROWS_PER_STEP, Minutes, append_rollups
from app.ingest.writer import InsertHook

_at = {name: index for index, name in enumerate(SPAN_COLUMNS)}
_PROJECT = _at["project_id"]
_START = _at["start_time"]
_SERVICE = _at["service_name"]
_NAME = _at["name"]
_KIND = _at["kind"]
_STATUS = _at["status_code"]

OperationKey = tuple[int, datetime, str, str, int]


def operation_rows(span_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One catalog row (OPERATION_COLUMNS) per distinct key of the span rows."""
    return drive(operation_rows_steps(span_rows))


def operation_rows_steps(span_rows: list[tuple[Any, ...]]) -> Steps[list[tuple[Any, ...]]]:
    """`operation_rows` as sliced steps (see app/ingest/offload.py)."""
    totals: dict[OperationKey, list[int]] = {}
    minute_of = Minutes()
    for number, row in enumerate(span_rows, 1):
        if not number % ROWS_PER_STEP:
            yield
        key = (
            row[_PROJECT],
            minute_of(row[_START]),
            row[_SERVICE],
            row[_NAME],
            row[_KIND],
        )
        total = totals.get(key)
        if total is None:
            total = totals[key] = [0, 0]
        total[0] += 1
        total[1] += row[_STATUS] == STATUS_ERROR
    return [(*key, spans, errors, False) for key, (spans, errors) in totals.items()]


async def append_operations(
    connection: asyncpg.Connection, span_rows: list[tuple[Any, ...]]
) -> None:
    # In slices on the loop, as the rollups: a 20,000-span flush is milliseconds of CPU.
    rows = await in_turns(operation_rows_steps(span_rows))
    if rows:
        await connection.copy_records_to_table(
            "span_operations", records=rows, columns=list(OPERATION_COLUMNS)
        )


async def after_spans(connection: asyncpg.Connection, span_rows: list[tuple[Any, ...]]) -> None:
    """Everything written beside new spans: dashboard rollups and the operation catalog."""
    await append_rollups(connection, span_rows)
    await append_operations(connection, span_rows)


SPANS_HOOK = InsertHook(
    ("project_id", "trace_id", "span_id", "start_time"),
    after_spans,
    partitioned_tables=("span_rollups", "span_operations"),
)
