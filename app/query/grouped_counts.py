"""Counting a rule's rows per group over its window, and the `absent` check.

Shared by the log and error sample readers. A `CountSource` names the rows a rule
counts: the table, its time column, the conditions (project and filters, never time)
and the group keys (label name → a text expression). `count_query` / `absent_query`
build a `SampleQuery` once; `run` executes it for a window. Contract:

- The window is `(now - window, now]`: `time > start AND time <= end`.
- count: without keys, exactly one sample `{labels: {}, value: count}` (0 when nothing
  matched, so `count < 1` can fire); with keys, one sample per group that had a row in
  the window (a group with no rows has no sample). `per_second` divides by it.
- absent: without keys, `[{labels: {}, value: 1}]` when no row matched in the window,
  else `[]`; with keys, one sample (value 1) per group that had rows in the
  `ABSENT_LOOKBACK` before the window and none in it.
- Label values are text; a missing value (NULL) reads as "".
- A `GroupContext` adds labels and annotations per group from a joined table, in the
  same statement (the error group's service, type and message for a fingerprint).

The window's bounds are bind parameters (`WINDOW_START`, `WINDOW_END`, `LOOKBACK_START`),
so a built query is reused round after round: SQLAlchemy then neither rebuilds nor
recompiles it, which is most of a cheap rule's cost.

Key expressions may hold bound parameters (attribute keys). PostgreSQL cannot match a
parameterized expression in SELECT with the same one in GROUP BY (two different `$n`),
so keys are computed in an inner query and grouped on its output columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, DateTime, FromClause, bindparam, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.alert_rules import RuleQuery, RuleSample

# How far before the window `absent` with group_by looks for the groups that should report.
ABSENT_LOOKBACK = timedelta(hours=24)
WINDOW_START = bindparam("window_start", type_=DateTime(timezone=True))
WINDOW_END = bindparam("window_end", type_=DateTime(timezone=True))
LOOKBACK_START = bindparam("lookback_start", type_=DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class GroupContext:
    """Columns of another table joined to each group by one of its keys (`key`): extra
    labels (a group_by value of the same name wins) and annotations; NULLs are left out."""

    key: str
    table: FromClause
    join_on: Callable[[ColumnElement[Any]], ColumnElement[bool]]
    labels: Sequence[tuple[str, ColumnElement[Any]]] = ()
    annotations: Sequence[tuple[str, ColumnElement[Any]]] = ()


@dataclass(frozen=True, slots=True)
class CountSource:
    table: FromClause
    time: ColumnElement[Any]
    conditions: Sequence[ColumnElement[bool]]
    keys: Sequence[tuple[str, ColumnElement[Any]]] = ()
    context: GroupContext | None = None


@dataclass(frozen=True, slots=True)
class SampleQuery:
    """A built statement and how to read its rows. `kind`: `total` (one count), `exists`
    (absent without keys), `groups` (key_0.., value, then context columns)."""

    statement: Any
    kind: str
    source: CountSource
    scale: float = 1.0


def window_bounds(query: RuleQuery, now: datetime) -> tuple[datetime, datetime]:
    """`(start, end)` of the window `(now - window, now]`."""
    return now - timedelta(seconds=query.window_s), now


def attribute_value(key: str, *columns: Any) -> ColumnElement[str]:
    """The text of attribute `key` in the first jsonb column that has it, else ""."""
    return func.coalesce(*(column[key].astext for column in columns), "")


def _in_window(source: CountSource, start: Any) -> list[ColumnElement[bool]]:
    return [*source.conditions, source.time > start, source.time <= WINDOW_END]


def _grouped(source: CountSource, start: Any, *, with_time: bool = False) -> Any:
    columns = [
        expression.label(f"key_{index}") for index, (_, expression) in enumerate(source.keys)
    ]
    if with_time:
        columns.append(source.time.label("at"))
    return select(*columns).select_from(source.table).where(*_in_window(source, start))


def _with_context(source: CountSource, groups: Any) -> Any:
    """select key_0.., value[, context columns] from the `groups` subquery."""
    key_columns = [groups.c[f"key_{index}"] for index in range(len(source.keys))]
    context = source.context
    if context is None:
        return select(*key_columns, groups.c.value)
    joined_key = key_columns[[name for name, _ in source.keys].index(context.key)]
    extra = [column for _, column in context.labels] + [column for _, column in context.annotations]
    return select(*key_columns, groups.c.value, *extra).select_from(
        groups.outerjoin(context.table, context.join_on(joined_key))
    )


def count_query(source: CountSource, *, per_second: float | None = None) -> SampleQuery:
    scale = per_second or 1.0
    if not source.keys:
        total = (
            select(func.count()).select_from(source.table).where(*_in_window(source, WINDOW_START))
        )
        return SampleQuery(total, "total", source, scale)
    matched = _grouped(source, WINDOW_START).subquery("matched")
    keys = list(matched.c)
    groups = select(*keys, func.count().label("value")).group_by(*keys).subquery("groups")
    return SampleQuery(_with_context(source, groups), "groups", source, scale)


def absent_query(source: CountSource) -> SampleQuery:
    if not source.keys:
        found = (
            select(literal(1))
            .select_from(source.table)
            .where(*_in_window(source, WINDOW_START))
            .limit(1)
        )
        return SampleQuery(found, "exists", source)
    matched = _grouped(source, LOOKBACK_START, with_time=True).subquery("matched")
    keys = [column for column in matched.c if column.name != "at"]
    groups = (
        select(*keys, literal(1).label("value"))
        .group_by(*keys)
        .having(func.max(matched.c.at) <= WINDOW_START)
        .subquery("groups")
    )
    return SampleQuery(_with_context(source, groups), "groups", source)


def _sample(source: CountSource, row: Sequence[Any], scale: float) -> RuleSample:
    width = len(source.keys)
    labels = {
        name: "" if value is None else str(value)
        for (name, _), value in zip(source.keys, row[:width], strict=True)
    }
    value = float(row[width]) / scale
    context = source.context
    if context is None:
        return RuleSample(labels, value)
    found = row[width + 1 :]
    names = [name for name, _ in context.labels] + [name for name, _ in context.annotations]
    values = dict(zip(names, found, strict=True))
    extra = {name: values[name] for name, _ in context.labels if values[name] is not None}
    annotations = {
        name: values[name] for name, _ in context.annotations if values[name] is not None
    }
    return RuleSample({**extra, **labels}, value, annotations=annotations or None)


async def run(
    connection: AsyncConnection, query: SampleQuery, start: datetime, end: datetime
) -> list[RuleSample]:
    """The samples of `query` for the window `(start, end]`."""
    window = {"window_start": start, "window_end": end, "lookback_start": start - ABSENT_LOOKBACK}
    if query.kind == "total":
        total = await connection.scalar(query.statement, window)
        return [RuleSample({}, int(total or 0) / query.scale)]
    if query.kind == "exists":
        found = await connection.scalar(query.statement, window)
        return [] if found is not None else [RuleSample({}, 1.0)]
    rows = await connection.execute(query.statement, window)
    return [_sample(query.source, row, query.scale) for row in rows.all()]
