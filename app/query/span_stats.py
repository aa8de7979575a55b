"""Span statistics per group (app/domain/span_stats.py), from rollups or from raw spans.

Contract:
- `rollup_stats` reads `span_rollups` of one category, minutes `first_minute..last`
  (both inclusive), and sums every row of a key: rows are appended per ingest batch and
  merged later by the compaction job, so a minute may hold several rows of one key.
- `raw_stats` reads `spans` that started in `(after, until]`; its latency sketch puts each
  span in the bucket `sketch.bucket_index` would, computed in SQL from the same
  constants (the query tests check the two agree on bucket edges), so a percentile over
  raw spans equals the one over rollups of the same spans.
- Both take the group key as SQL expressions and return {key values: SpanStats}; both are
  bounded by project and time, so partition pruning and the (project_id, ..., time)
  indexes apply and their cost follows the range asked, not what is retained.
- Sketches are read only when asked for (percentiles): unnesting them is the costly part.
  A rule needs one query: its sums, or (percentiles) its sketches alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    FromClause,
    Integer,
    case,
    cast,
    func,
    literal,
    not_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.util import ClauseAdapter

from app.db.tables import span_rollups, span_rollups_hourly, spans
from app.domain import sketch
from app.domain.records import STATUS_ERROR
from app.domain.span_stats import SpanStats, add_to

Key = tuple[Any, ...]
r = span_rollups
h = span_rollups_hourly
s = spans.c


def _whole_hours(first_minute: datetime, last: datetime) -> tuple[datetime, datetime] | None:
    """[h0, h1): the hours whose every minute is in `first_minute..last`, or None."""
    hour = timedelta(hours=1)
    h0 = first_minute.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if h0 < first_minute:
        h0 += hour
    h1 = (last + timedelta(minutes=1)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (h0, h1) if h0 < h1 else None


def _rollup_rows(
    project_id: int, category: int, first_minute: datetime, last: datetime, hourly: bool
) -> FromClause:
    """The rows to sum for `first_minute..last`: `span_rollups` itself, or (`hourly`) the
    whole hours from `span_rollups_hourly` plus the minute rows those hours have not folded
    in (uncompacted) and every minute row of the partial hours at the edges."""
    whole = _whole_hours(first_minute, last) if hourly else None
    if whole is None:
        return span_rollups
    h0, h1 = whole
    columns = [column for column in r.c if column.name != "compacted"]
    mine = (r.c.project_id == project_id, r.c.category == category)
    parts = [
        select(*columns).where(*mine, r.c.minute >= first_minute, r.c.minute < h0),
        # NOT compacted, as written: the partial index span_rollups_unfolded answers it
        select(*columns).where(*mine, r.c.minute >= h0, r.c.minute < h1, not_(r.c.compacted)),
        select(*columns).where(*mine, r.c.minute >= h1, r.c.minute <= last),
        select(
            *(
                (h.c.hour if column.name == "minute" else h.c[column.name]).label(column.name)
                for column in columns
            )
        ).where(
            h.c.project_id == project_id, h.c.category == category, h.c.hour >= h0, h.c.hour < h1
        ),
    ]
    return union_all(*parts).subquery("tiered")


async def rollup_stats(
    connection: AsyncConnection,
    project_id: int,
    category: int,
    first_minute: datetime,
    last: datetime,
    *,
    conditions: Sequence[ColumnElement[bool]] = (),
    keys: Sequence[ColumnElement[Any]] = (),
    sketches: bool = True,
    totals: bool = True,
    hourly: bool = False,
) -> dict[Key, SpanStats]:
    """`totals=False` reads only the sketches (and counts from them): one query less.

    `hourly` reads the window's whole hours from `span_rollups_hourly` (same results, a
    24th of the rows for a day); only for keys and conditions that do not depend on the
    minute (the overview's time steps do).
    """
    source = _rollup_rows(project_id, category, first_minute, last, hourly)
    if source is not span_rollups:
        adapter = ClauseAdapter(source)
        keys = [adapter.traverse(key) for key in keys]
        conditions = [adapter.traverse(condition) for condition in conditions]
        where: tuple[ColumnElement[bool], ...] = tuple(conditions)
    else:
        where = (
            r.c.project_id == project_id,
            r.c.category == category,
            r.c.minute >= first_minute,
            r.c.minute <= last,
            *conditions,
        )
    c = source.c
    found: dict[Key, SpanStats] = {}
    width = len(keys)
    if totals:
        rows = await connection.execute(
            select(
                *keys,
                func.sum(c.count),
                func.sum(c.error_count),
                func.sum(c.duration_ms_sum),
                func.sum(c.input_tokens),
                func.sum(c.output_tokens),
                func.sum(c.cache_read_tokens),
                func.sum(c.cost_usd),
            )
            .select_from(source)
            .where(*where)
            .group_by(*keys)
        )
        for row in rows:
            count, errors, duration, input_tokens, output_tokens, cached, cost = row[width:]
            if not count:  # no key: the aggregate answers one row even when nothing matched
                continue
            found[tuple(row[:width])] = SpanStats(
                count=int(count),
                errors=int(errors),
                duration_ms=float(duration),
                input_tokens=int(input_tokens),
                output_tokens=int(output_tokens),
                cache_read_tokens=int(cached),
                cost_usd=float(cost),
            )
    if sketches and (found or not totals):
        # The keys once per rollup row, not once per bucket: OFFSET 0 keeps the rows a
        # subquery of their own, so a computed key (the overview's time step, numeric
        # arithmetic) is not evaluated again for each of their 20-40 unnested buckets.
        rows_keyed = (
            select(
                *(key.label(f"key{i}") for i, key in enumerate(keys)),
                c.sketch_index,
                c.sketch_count,
            )
            .select_from(source)
            .where(*where)
            .offset(0)
            .subquery("keyed")
        )
        key_columns = [rows_keyed.c[f"key{i}"] for i in range(width)]
        unnested = (
            func.unnest(rows_keyed.c.sketch_index, rows_keyed.c.sketch_count)
            .table_valued("idx", "cnt")
            .render_derived()
        )
        buckets = await connection.execute(
            select(*key_columns, unnested.c.idx, func.sum(unnested.c.cnt))
            .select_from(rows_keyed)
            .join(unnested, true())
            .group_by(*key_columns, unnested.c.idx)
        )
        for *key, index, count in buckets:
            stats = found.get(tuple(key))
            if stats is None:
                stats = found[tuple(key)] = SpanStats()
            stats.sketch[index] = int(count)
            if not totals:
                stats.count += int(count)
    return found


def bucket_index_sql(duration_ns: Any) -> ColumnElement[int]:
    """`sketch.bucket_index(duration_ns / 1e6)` in SQL, step for step in float8."""
    duration_ms = cast(duration_ns, Double) / literal(1_000_000.0, Double)
    return case(
        (duration_ms <= literal(sketch.MIN_VALUE_MS, Double), literal(sketch.ZERO_INDEX, Integer)),
        else_=cast(func.ceil(func.ln(duration_ms) / literal(sketch.LOG_GAMMA, Double)), Integer),
    )


async def raw_stats(
    connection: AsyncConnection,
    project_id: int,
    after: datetime,
    until: datetime,
    *,
    conditions: Sequence[ColumnElement[bool]] = (),
    keys: Sequence[ColumnElement[Any]] = (),
    sketches: bool = False,
    totals: bool = True,
) -> dict[Key, SpanStats]:
    """Stats of the spans started in (after, until]; `totals=False` counts only."""
    measures: list[ColumnElement[Any]] = [func.count()]
    if totals:
        measures += [
            func.count().filter(s.status_code == STATUS_ERROR),
            func.sum(s.duration_ns),
            func.coalesce(func.sum(s.gen_ai_input_tokens), 0),
            func.coalesce(func.sum(s.gen_ai_output_tokens), 0),
            func.coalesce(func.sum(s.gen_ai_cache_read_tokens), 0),
            func.coalesce(func.sum(s.cost_usd), 0.0),
        ]
    group = [*keys, bucket_index_sql(s.duration_ns)] if sketches else list(keys)
    rows = await connection.execute(
        select(*group, *measures)
        .where(
            s.project_id == project_id,
            s.start_time > after,
            s.start_time <= until,
            *conditions,
        )
        .group_by(*group)
    )
    found: dict[Key, SpanStats] = {}
    width = len(keys)
    for row in rows:
        values = row[len(group) :]
        if not values[0]:
            continue
        part = SpanStats(count=int(values[0]))
        if totals:
            part.errors = int(values[1])
            part.duration_ms = float(values[2]) / 1_000_000
            part.input_tokens = int(values[3])
            part.output_tokens = int(values[4])
            part.cache_read_tokens = int(values[5])
            part.cost_usd = float(values[6])
        if sketches:
            part.sketch[row[width]] = part.count
        add_to(found, tuple(row[:width]), part)
    return found
