"""Values of span alert rules: one sample per group of the spans that match a rule's query.

Contract of `span_samples` (the rule's window is `(now - window, now]`):

- Labels are `{group_by key: value as text}`: columns (service, name, kind, status, model,
  provider, tool, operation; kind and status by name) or attribute keys, looked up in the
  span's attributes, then its resource's (`user.id`, `session.id`, ...); a missing value
  is "". Attribute values that are not strings are written as JSON (`200`, `true`).
- Values are floats, computed by `SpanStats` (app/domain/span_stats.py), the code the
  dashboards use. Without group_by, count, rate, error_count and sum answer 0 when nothing
  matched; a ratio, average or percentile of nothing is no sample, never NaN.
- `absent` without group_by: one sample `{}` = 1.0 when nothing matched in the window.
  With group_by: 1.0 for each group that matched in the 24 h before the window and not in
  it.
- Filters are trace search's (`SpanFilters`), with an attribute filter also matching the
  resource's attribute when the span lacks the key, as group_by looks it up; kind
  `internal` also matches an unspecified kind, which traces show as internal.
- Rollups answer the rule when they hold it: a `category` filter, other filters and
  group_by only over what that category's rollups are keyed on (request: service; llm:
  service, model, provider; tool: service, tool) and any aggregation but a token or cost
  one over requests (request rollups keep none). They are per minute, so like the
  dashboards (`window_bounds`) the rollup window starts at the minute `now - window` falls
  in and ends with the minute holding `now`: up to 59 s longer than asked, so a rule shows
  the dashboards' numbers for the same window. Rates still divide by the window asked.
  When `now - window` falls on a minute boundary both paths read the same spans, bar one
  that started exactly at `now - window` or later than `now`.
- Every query is bounded by project and time (window, plus 24 h for absent with
  group_by), so a rule's cost follows its window, not the data retained.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, func
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import span_rollups, spans
from app.domain.alert_rules import SPAN_PERCENTILES, RuleQuery, RuleSample
from app.domain.metric_math import label_text
from app.domain.records import SPAN_KIND_NAMES, STATUS_NAMES
from app.domain.span_stats import SpanStats, add_to
from app.ingest.rollups import LLM, REQUEST, TOOL
from app.query.dashboard import window_bounds
from app.query.span_stats import Key, raw_stats, rollup_stats
from app.query.traces import SpanFilters

ABSENT_LOOKBACK = timedelta(hours=24)
CATEGORIES = {"request": REQUEST, "llm": LLM, "tool": TOOL}
r = span_rollups.c
# What each category's rollup rows are keyed on: the filters and group_by they can answer.
ROLLUP_DIMENSIONS: dict[int, dict[str, Any]] = {
    REQUEST: {"service": r.service_name},
    LLM: {"service": r.service_name, "model": r.model, "provider": r.provider},
    TOOL: {"service": r.service_name, "tool": r.tool},
}
# The columns group_by may name, on raw spans.
GROUP_COLUMNS: dict[str, Any] = {
    "service": spans.c.service_name,
    "name": spans.c.name,
    "kind": spans.c.kind,
    "status": spans.c.status_code,
    "model": spans.c.gen_ai_model,
    "provider": spans.c.gen_ai_provider,
    "tool": spans.c.gen_ai_tool_name,
    "operation": spans.c.gen_ai_operation,
}
Labels = tuple[str, ...]  # group_by values, in group_by order


def rollup_category(query: RuleQuery) -> int | None:
    """The category whose rollups answer `query`, or None when raw spans must."""
    category = CATEGORIES.get(query.filters.get("category", ""))
    if category is None:
        return None
    dimensions = ROLLUP_DIMENSIONS[category]
    if any(name != "category" and name not in dimensions for name in query.filters):
        return None
    if any(key not in dimensions for key in query.group_by):
        return None
    usage = query.aggregation == "sum" or (
        query.aggregation == "avg" and query.field not in (None, "duration_ms")
    )
    return None if usage and category == REQUEST else category


async def span_samples(
    connection: AsyncConnection,
    project_id: int,
    query: RuleQuery,
    now: datetime,
    *,
    source: Literal["auto", "rollups", "spans"] = "auto",
) -> list[RuleSample]:
    """The rule's samples, sorted by labels. `source` forces a path (tests, benchmarks)."""
    category = None if source == "spans" else rollup_category(query)
    if category is None and source == "rollups":
        raise ValueError("the rollups do not hold this rule's answer")
    if category is None:
        groups, before = await _from_spans(connection, project_id, query, now)
    else:
        groups, before = await _from_rollups(connection, project_id, query, category, now)
    keys = query.group_by
    if query.aggregation == "absent":
        if not keys:
            return [] if groups else [RuleSample({}, 1.0)]
        gone = sorted(before - groups.keys())
        return [RuleSample(dict(zip(keys, labels, strict=True)), 1.0) for labels in gone]
    if not keys:
        groups.setdefault((), SpanStats())
    samples = []
    for labels, stats in sorted(groups.items()):
        value = stats.value(query.aggregation, query.field, query.window_s)
        if value is not None:
            samples.append(RuleSample(dict(zip(keys, labels, strict=True)), value))
    return samples


async def _from_rollups(
    connection: AsyncConnection, project_id: int, query: RuleQuery, category: int, now: datetime
) -> tuple[dict[Labels, SpanStats], set[Labels]]:
    """(stats per group in the window, groups seen in the 24 h before it: absent only)."""
    dimensions = ROLLUP_DIMENSIONS[category]
    conditions = [
        dimensions[name] == value for name, value in query.filters.items() if name != "category"
    ]
    keys = [dimensions[key] for key in query.group_by]
    origin, end, _ = window_bounds(query.window_s, now)
    percentile = query.aggregation in SPAN_PERCENTILES
    split = query.aggregation == "absent" and bool(keys)
    if split:  # one read of the day before and the window, split by a last key
        keys.append((r.minute >= origin).label("in_window"))
        origin -= ABSENT_LOOKBACK
    found = await rollup_stats(
        connection,
        project_id,
        category,
        origin,
        end,
        conditions=conditions,
        keys=keys,
        sketches=percentile,
        totals=not percentile,
        hourly=not split,  # the split's key is per minute
    )
    return _groups(found, query.group_by, split=split)


async def _from_spans(
    connection: AsyncConnection, project_id: int, query: RuleQuery, now: datetime
) -> tuple[dict[Labels, SpanStats], set[Labels]]:
    filters = query.filters
    conditions = SpanFilters(
        service=filters.get("service"),
        name=filters.get("name"),
        status=filters.get("status"),
        attributes=query.attribute_filters,
        kind=filters.get("kind"),
        model=filters.get("model"),
        provider=filters.get("provider"),
        tool=filters.get("tool"),
        operation=filters.get("operation"),
        category=CATEGORIES.get(filters.get("category", "")),
        resource_fallback=True,
    ).conditions(spans)
    keys = [_span_key(key) for key in query.group_by]
    start = now - timedelta(seconds=query.window_s)
    first = start
    split = query.aggregation == "absent" and bool(keys)
    if split:  # one scan of the day before and the window, split by a last key
        keys.append((spans.c.start_time > start).label("in_window"))
        first -= ABSENT_LOOKBACK
    found = await raw_stats(
        connection,
        project_id,
        first,
        now,
        conditions=conditions,
        keys=keys,
        sketches=query.aggregation in SPAN_PERCENTILES,
        totals=query.aggregation not in ("count", "rate", "absent"),
    )
    return _groups(found, query.group_by, split=split)


def _groups(
    found: dict[Key, SpanStats], group_by: list[str], *, split: bool
) -> tuple[dict[Labels, SpanStats], set[Labels]]:
    """(stats per label set in the window, label sets seen before it). With `split`, the
    keys end with "in the window?"; else every key is in the window."""
    if not split:
        return _by_labels(found, group_by), set()
    inside = {key[:-1]: stats for key, stats in found.items() if key[-1]}
    earlier = {key[:-1]: stats for key, stats in found.items() if not key[-1]}
    return _by_labels(inside, group_by), set(_by_labels(earlier, group_by))


def _span_key(key: str) -> ColumnElement[Any]:
    column = GROUP_COLUMNS.get(key)
    if column is not None:
        return column
    return func.coalesce(spans.c.attributes[key], spans.c.resource_attributes[key])


def _label(key: str, value: Any) -> str:
    if value is None:
        return ""
    if key == "kind":
        return SPAN_KIND_NAMES[value] if 0 < value < len(SPAN_KIND_NAMES) else "internal"
    if key == "status":
        return STATUS_NAMES[value] if 0 <= value < len(STATUS_NAMES) else "unset"
    return value if key in GROUP_COLUMNS else label_text(value)


def _by_labels(found: dict[Key, SpanStats], group_by: list[str]) -> dict[Labels, SpanStats]:
    """Stats per label set; keys that read the same as text (1 and "1") merge."""
    groups: dict[Labels, SpanStats] = {}
    for key, stats in found.items():
        labels = tuple(_label(name, value) for name, value in zip(group_by, key, strict=True))
        add_to(groups, labels, stats)
    return groups
