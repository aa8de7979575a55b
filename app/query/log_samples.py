"""A logs rule's query: count, rate (per second) or absent, per group, over its window.

Filters mean what they mean in log search (app/query/logs.py, the same conditions):
`service`, `level` (a minimum, by severity number or a well-known severity text), `q`
(full text, websearch syntax over the `simple` configuration) and `attributes`.
Group keys: `service`, `level` (the level name log search returns; "" when the record
has none) and any other key, looked up in the record's attributes, then its resource's.
Window and sample semantics: app/query/grouped_counts.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, func

from app.db.tables import logs
from app.domain.alert_rules import RuleQuery
from app.domain.logs import _TEXT_LEVELS, LEVEL_FLOOR, LEVELS, SEVERITY_MAX
from app.query.grouped_counts import (
    CountSource,
    SampleQuery,
    absent_query,
    attribute_value,
    count_query,
)
from app.query.logs import LogFilters


def level_expression() -> ColumnElement[str]:
    """SQL for app.domain.logs.level_name, "" where that gives None."""
    number = logs.c.severity_number
    by_text = case(dict(_TEXT_LEVELS), value=func.lower(func.btrim(logs.c.severity_text)), else_="")
    ranges = [
        (number.between(LEVEL_FLOOR[name], min(LEVEL_FLOOR[name] + 3, SEVERITY_MAX)), name)
        for name in LEVELS
    ]
    return case(*ranges, else_=by_text)


def _key(name: str) -> ColumnElement[Any]:
    if name == "service":
        return logs.c.service_name
    if name == "level":
        return level_expression()
    return attribute_value(name, logs.c.attributes, logs.c.resource_attributes)


def log_source(project_id: int, query: RuleQuery) -> CountSource:
    filters = LogFilters(
        text=query.filter("q"),
        level=query.filter("level"),
        service=query.filter("service"),
        attributes=query.attribute_filters,
    )
    return CountSource(
        table=logs,
        time=logs.c.time,
        conditions=[logs.c.project_id == project_id, *filters.conditions()],
        keys=[(name, _key(name)) for name in query.group_by],
    )


def log_query(project_id: int, query: RuleQuery) -> SampleQuery:
    source = log_source(project_id, query)
    if query.aggregation == "absent":
        return absent_query(source)
    if query.aggregation == "rate":
        return count_query(source, per_second=query.window_s)
    if query.aggregation == "count":
        return count_query(source)
    raise ValueError(f"logs rules have no aggregation {query.aggregation!r}")
