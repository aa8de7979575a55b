"""Which traces hold a matching span: the access path of selective trace searches.

A trace search with span filters can walk the window's roots newest first and test each
trace for a matching span: cheap when most traces match, but when 1% do, a 20-trace page
tests about 2,000 traces, and more as the window holds more. Instead the search first reads
the trace ids of the matching spans themselves, through the index that serves the filter
(migration 0008: service + duration, service + errors, service + span name; 0004:
attribute GIN), whose cost follows the number of matches. When they are few (at most
`CANDIDATE_LIMIT` spans) the page is made from those traces only; when they are many,
matches are dense and the walk over the roots finds a page after a few tests.

Both ways select the same traces: a root in the window whose trace has a span that
started in the window and matches every filter (app/query/traces.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    Subquery,
    bindparam,
    exists,
    func,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.tables import spans

# Above this many matching spans the root walk is taken: with N roots in the window and
# M > CANDIDATE_LIMIT matching traces among them, a page of 20 tests about 20 * N / M.
CANDIDATE_LIMIT = 5_000


def candidates_query(
    project_id: int,
    conditions: Sequence[ColumnElement[bool]],
    start: datetime,
    end: datetime,
) -> Select[tuple[bytes]]:
    """Trace ids of up to CANDIDATE_LIMIT + 1 matching spans (conditions on `spans`)."""
    return (
        select(spans.c.trace_id)
        .where(
            spans.c.project_id == project_id,
            spans.c.start_time >= start,
            spans.c.start_time <= end,
            *conditions,
        )
        .limit(CANDIDATE_LIMIT + 1)
    )


async def matching_traces(
    engine: AsyncEngine,
    project_id: int,
    conditions: Sequence[ColumnElement[bool]],
    start: datetime,
    end: datetime,
) -> list[bytes] | None:
    """The distinct trace ids of the spans that started in start..end and meet every
    condition, or None when more than CANDIDATE_LIMIT spans do (then matches are dense)."""
    async with engine.connect() as connection:
        query = candidates_query(project_id, conditions, start, end)
        rows = (await connection.execute(query)).all()
    if len(rows) > CANDIDATE_LIMIT:
        return None
    return sorted({row.trace_id for row in rows})


def no_earlier_root(project_id: int, root: Any) -> ColumnElement[bool]:
    """No root of `root`'s trace (columns trace_id, start_time, span_id) came before it, by
    (start time, span id): a trace with several parentless spans is listed once, at its
    earliest root."""
    earlier = spans.alias("earlier_root")
    return ~exists().where(
        earlier.c.project_id == project_id,
        earlier.c.trace_id == root.c.trace_id,
        earlier.c.is_root,
        # Redundant with the next line; lets PostgreSQL skip newer partitions.
        earlier.c.start_time <= root.c.start_time,
        tuple_(earlier.c.start_time, earlier.c.span_id) < tuple_(root.c.start_time, root.c.span_id),
    )


def candidate_page(
    project_id: int,
    candidates: Sequence[bytes],
    start: datetime,
    end: datetime,
    limit: int,
    position: tuple[datetime, bytes] | None,
) -> Subquery:
    """The page among `candidates` (every trace with a matching span in the window), with
    the columns and order of the root walk's page.

    Per candidate, its first root in the window (index spans_roots_trace, window
    partitions only); newest first; then, lazily down that order until the page is full,
    the test that no root of the trace started earlier (one at most per listed trace).
    """
    listed = (
        func.unnest(bindparam("candidates", list(candidates), type_=ARRAY(LargeBinary)))
        .table_valued("trace_id")
        .render_derived(name="candidate")
    )
    root = spans.alias("root")
    first = (
        select(root.c.trace_id, root.c.start_time, root.c.span_id, root.c.service_name, root.c.name)
        .where(
            root.c.project_id == project_id,
            root.c.trace_id == listed.c.trace_id,
            root.c.is_root,
            root.c.start_time >= start,
            root.c.start_time <= end,
        )
        .order_by(root.c.start_time, root.c.span_id)
        .limit(1)
        .lateral("first_root")
    )
    ordered = select(first).select_from(listed.join(first, true()))
    if position is not None:
        ordered = ordered.where(tuple_(first.c.start_time, first.c.trace_id) < tuple_(*position))
    # OFFSET 0 keeps this a subquery of its own: sorted once, then read lazily below.
    newest = (
        ordered.order_by(first.c.start_time.desc(), first.c.trace_id.desc())
        .offset(0)
        .subquery("newest")
    )
    return (
        select(
            newest.c.trace_id,
            newest.c.start_time.label("root_start"),
            newest.c.service_name.label("root_service"),
            newest.c.name.label("root_name"),
        )
        .where(no_earlier_root(project_id, newest))
        .order_by(newest.c.start_time.desc(), newest.c.trace_id.desc())
        .limit(limit + 1)
        .subquery("page")
    )
