"""Per-minute span rollups, appended in the same transaction as the spans they count.

The writer calls `append_rollups` with exactly the span rows it inserted (a retried
export that merges adds nothing), so every span is counted once, late data included.
What counts as a request is defined here, once: a SERVER span (a call into a service)
or a root span (a trace's entry point, e.g. an agent turn started without a server).
`categories` decides it for a row being written, `category_condition` is the same test
in SQL, for queries over raw spans that must count what the rollups count.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import ColumnElement, FromClause, and_, or_

from app.db.tables import ROLLUP_COLUMNS, SPAN_COLUMNS
from app.domain import sketch
from app.domain.records import KIND_SERVER, STATUS_ERROR
from app.ingest.offload import Steps, drive, in_turns
from app.ingest.writer import InsertHook

REQUEST, LLM, TOOL = 1, 2, 3

_at = {name: index for index, name in enumerate(SPAN_COLUMNS)}
_PROJECT = _at["project_id"]
_PARENT = _at["parent_span_id"]
_KIND = _at["kind"]
_START = _at["start_time"]
_DURATION = _at["duration_ns"]
_STATUS = _at["status_code"]
_SERVICE = _at["service_name"]
_MODEL = _at["gen_ai_model"]
_PROVIDER = _at["gen_ai_provider"]
_TOOL = _at["gen_ai_tool_name"]
_INPUT = _at["gen_ai_input_tokens"]
_OUTPUT = _at["gen_ai_output_tokens"]
_CACHED = _at["gen_ai_cache_read_tokens"]
_COST = _at["cost_usd"]

Key = tuple[int, datetime, int, str, str, str, str]


class _Totals:
    __slots__ = ("count", "errors", "duration_ms", "input", "output", "cached", "cost", "sketch")

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.duration_ms = 0.0
        self.input = 0
        self.output = 0
        self.cached = 0
        self.cost = 0.0
        self.sketch: dict[int, int] = {}


class Minutes:
    """The minute of a row's UTC timestamp, memoised per flush: `datetime.replace` costs
    about a microsecond, a fifth of what aggregating a span row costs without it, and a
    flush's spans fall in few minutes."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[int, int, int, int, int], datetime] = {}

    def __call__(self, at: datetime) -> datetime:
        fields = (at.year, at.month, at.day, at.hour, at.minute)
        minute = self._seen.get(fields)
        if minute is None:
            minute = self._seen[fields] = at.replace(second=0, microsecond=0)
        return minute


def categories(row: tuple[Any, ...]) -> list[int]:
    found = []
    if row[_KIND] == KIND_SERVER or row[_PARENT] is None:
        found.append(REQUEST)
    if row[_TOOL] is not None:
        found.append(TOOL)
    elif row[_MODEL] is not None or row[_INPUT] is not None or row[_OUTPUT] is not None:
        found.append(LLM)
    return found


def category_condition(table: FromClause, category: int) -> ColumnElement[bool]:
    """`category in categories(row)`, as a condition on `spans` (or an alias of it)."""
    c = table.c
    if category == REQUEST:
        return or_(c.kind == KIND_SERVER, c.parent_span_id.is_(None))
    if category == TOOL:
        return c.gen_ai_tool_name.is_not(None)
    return and_(
        c.gen_ai_tool_name.is_(None),
        or_(
            c.gen_ai_model.is_not(None),
            c.gen_ai_input_tokens.is_not(None),
            c.gen_ai_output_tokens.is_not(None),
        ),
    )


def rollup_rows(span_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Aggregate span rows into rollup rows, one per (project, minute, category, dims)."""
    return drive(rollup_rows_steps(span_rows))


# Span rows aggregated between two pauses of `rollup_rows_steps` (about 0.3 ms).
ROWS_PER_STEP = 128


def rollup_rows_steps(span_rows: list[tuple[Any, ...]]) -> Steps[list[tuple[Any, ...]]]:
    """`rollup_rows` as sliced steps (see app/ingest/offload.py)."""
    totals: dict[Key, _Totals] = {}
    minute_of = Minutes()
    for number, row in enumerate(span_rows, 1):
        if not number % ROWS_PER_STEP:
            yield
        found = categories(row)
        if not found:
            continue
        minute = minute_of(row[_START])
        duration_ms = row[_DURATION] / 1_000_000
        bucket = sketch.bucket_index(duration_ms)
        error = row[_STATUS] == STATUS_ERROR
        for category in found:
            if category == REQUEST:
                key = (row[_PROJECT], minute, REQUEST, row[_SERVICE], "", "", "")
            elif category == LLM:
                key = (
                    row[_PROJECT], minute, LLM, row[_SERVICE],
                    row[_MODEL] or "", row[_PROVIDER] or "", "",
                )  # fmt: skip
            else:
                key = (row[_PROJECT], minute, TOOL, row[_SERVICE], "", "", row[_TOOL])
            total = totals.get(key)
            if total is None:
                total = totals[key] = _Totals()
            total.count += 1
            total.errors += error
            total.duration_ms += duration_ms
            total.sketch[bucket] = total.sketch.get(bucket, 0) + 1
            if category != REQUEST:
                total.input += row[_INPUT] or 0
                total.output += row[_OUTPUT] or 0
                total.cached += row[_CACHED] or 0
                total.cost += row[_COST] or 0.0
    return [_row(key, total) for key, total in totals.items()]


def _row(key: Key, total: _Totals) -> tuple[Any, ...]:
    indexes, counts = sketch.to_arrays(total.sketch)
    return (
        *key,
        total.count,
        total.errors,
        total.duration_ms,
        total.input,
        total.output,
        total.cached,
        total.cost,
        indexes,
        counts,
        False,  # compacted: merged and folded into its hour by app/workers/rollups.py
    )


async def append_rollups(connection: asyncpg.Connection, span_rows: list[tuple[Any, ...]]) -> None:
    # In slices on the loop: a 20,000-span flush is over 100 ms of CPU, which at once would
    # hold up every connection of the process (and on a thread would fight the loop for the
    # interpreter lock; see app/ingest/offload.py).
    rows = await in_turns(rollup_rows_steps(span_rows))
    if rows:
        await connection.copy_records_to_table(
            "span_rollups", records=rows, columns=list(ROLLUP_COLUMNS)
        )


SPANS_HOOK = InsertHook(
    ("project_id", "trace_id", "span_id", "start_time"),
    append_rollups,
    partitioned_tables=("span_rollups",),
)
