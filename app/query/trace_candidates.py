"""Which traces hold a matching span: the access path of selective trace searches.

A trace search with span filters can walk the window's roots newest first and test each
trace for a matching span: cheap when most traces match, but when 1% do, a 20-trace page
tests about 2,000 traces, and more as the window holds more. Instead the search first reads
the trace ids of the matching spans themselves, through the index that serves the filter
(migration 0008: service + duration, service + errors, service + span name; 0004:
attribute GIN), whose cost follows the number of matches. Then, by how many there are:

- at most `CANDIDATE_LIMIT` traces: the page is made from those traces only, each
  probed for its first root (`candidate_page`; cost follows the matches);
- more, for a service's slow spans (service + minimum duration, the search Jaeger keeps
  a duration index for), when the window holds so many roots that reading them all
  costs less than the walk would (at most `MEMBERSHIP_LIMIT` spans): the root walk, but
  testing each root's trace id against the candidates (a hashed set) instead of reading
  the trace's spans: a page of 20 still tests about 20 * N / M roots (N roots in the
  window, M matching traces), at about a twentieth of the cost each;
- else: matches are dense, and the plain walk finds a page after a few tests.

All ways select the same traces: a root in the window whose trace has a span that
started in the window and matches every filter (app/query/traces.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    Text,
    bindparam,
    exists,
    func,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.tables import spans

# Up to this many matching traces the page is made from the candidates alone: one probe
# per trace (its first root), about 4 buffers per day partition of the window.
CANDIDATE_LIMIT = 5_000
# Past CANDIDATE_LIMIT matching spans, reading them all pays when the walk would test
# many roots: with N roots in the window and M matching traces a page of 20 walks about
# 20 * N / M roots, about 27 buffers (40 us) each to read the trace's spans, or about 2
# us each to test membership among the candidates, which cost about 2 us a span to read.
# So M spans are worth reading while M < sqrt(WALK_OVER_READ * N) (M of 14,000 at half a
# million roots, 4,600 at 53,000 roots), and never more than MEMBERSHIP_LIMIT.
WALK_OVER_READ = 400
MEMBERSHIP_LIMIT = 20_000


@dataclass(frozen=True, slots=True)
class Candidates:
    """The distinct trace ids of the matching spans: how many, and all of them in one
    text (hex, comma-separated), bound as one parameter: an array of 10,000 ids cost
    more to encode and decode than the query took to run."""

    count: int
    listed: str


def candidates_query(
    project_id: int,
    conditions: Sequence[ColumnElement[bool]],
    start: datetime,
    end: datetime,
) -> Select[Any]:
    """Trace ids of the matching spans (conditions on `spans`), one row per span."""
    return select(spans.c.trace_id).where(
        spans.c.project_id == project_id,
        spans.c.start_time >= start,
        spans.c.start_time <= end,
        *conditions,
    )


# The roots of each day partition, as the partial index of roots counted them at the
# partition's last ANALYZE or VACUUM (the partition-maintenance job keeps that recent):
# a catalog read, where EXPLAIN cost a round trip and planning.
_ROOTS_PER_PARTITION = text(
    """
    SELECT t.relname AS partition, greatest(i.reltuples, 0) AS roots
    FROM pg_inherits h
    JOIN pg_class i ON i.oid = h.inhrelid
    JOIN pg_index x ON x.indexrelid = i.oid
    JOIN pg_class t ON t.oid = x.indrelid
    WHERE h.inhparent = to_regclass('spans_roots_time')
    """
)
_DAY = timedelta(days=1)
_PARTITION_DAY = re.compile(r"spans_p(\d{8})")


async def estimated_roots(connection: AsyncConnection, start: datetime, end: datetime) -> float:
    """About how many roots (of every project) started in start..end: each overlapping
    day partition's count, in proportion to the overlap."""
    total = 0.0
    for row in await connection.execute(_ROOTS_PER_PARTITION):
        match = _PARTITION_DAY.fullmatch(row.partition)
        if match is None:
            continue
        day_start = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
        overlap = min(end, day_start + _DAY) - max(start, day_start)
        if overlap > timedelta(0):
            total += float(row.roots) * (overlap / _DAY)
    return total


async def _read(
    connection: AsyncConnection, matching: Select[Any], limit: int
) -> Candidates | None:
    """The distinct traces of up to `limit` matching spans, or None when more match."""
    read = matching.limit(limit + 1).subquery("matching")
    per_trace = (
        select(read.c.trace_id, func.count().label("spans"))
        .group_by(read.c.trace_id)
        .subquery("per_trace")
    )
    row = (
        await connection.execute(
            select(
                func.coalesce(func.sum(per_trace.c.spans), 0).label("spans"),
                func.count().label("traces"),
                func.coalesce(
                    func.string_agg(func.encode(per_trace.c.trace_id, "hex"), ","), ""
                ).label("listed"),
            )
        )
    ).one()
    if int(row.spans) > limit:
        return None
    return Candidates(int(row.traces), row.listed)


async def matching_traces(
    engine: AsyncEngine,
    project_id: int,
    conditions: Sequence[ColumnElement[bool]],
    start: datetime,
    end: datetime,
    *,
    read_more: bool = False,
) -> Candidates | None:
    """The traces of the spans that started in start..end and meet every condition, or
    None when they are too many to be worth reading (then the plain root walk finds a
    page sooner).

    Up to CANDIDATE_LIMIT + 1 spans are read first: a selective filter stops there.
    With `read_more` (a search for a service's slow spans: how many match cannot be
    told from the first read, in duration order), more are read when the window's roots
    make the walk cost more than reading them (see WALK_OVER_READ). Other filters past
    the limit are dense (a service alone, its errors, a common span name) and take the
    walk, which finds their page after a few tests.
    """
    async with engine.connect() as connection:
        matching = candidates_query(project_id, conditions, start, end)
        found = await _read(connection, matching, CANDIDATE_LIMIT)
        if found is not None or not read_more:
            return found
        roots = await estimated_roots(connection, start, end)
        limit = min(MEMBERSHIP_LIMIT, int(math.sqrt(WALK_OVER_READ * roots)))
        if limit <= CANDIDATE_LIMIT:
            return None
        return await _read(connection, matching, limit)


def listed_ids(candidates: Candidates) -> Select[Any]:
    """The candidates' trace ids, one row each (column `trace_id`)."""
    listed = bindparam("candidates", candidates.listed, type_=Text)
    return select(
        func.decode(func.unnest(func.string_to_array(listed, ",")), "hex").label("trace_id")
    )


def probed(candidates: Candidates) -> bool:
    """Whether the page is made by probing each candidate (else: the walk tests membership)."""
    return candidates.count <= CANDIDATE_LIMIT


def is_candidate(column: Any, candidates: Candidates) -> ColumnElement[bool]:
    """`column` (a root's trace id) is one of `candidates`: a hashed subplan, built once
    and probed per root of the walk. COALESCE keeps the IN from being planned as a join,
    whose output PostgreSQL would sort, reading every root of the window."""
    return func.coalesce(column.in_(listed_ids(candidates)), False)


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
    candidates: Candidates,
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
    listed = listed_ids(candidates).subquery("candidate")
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
