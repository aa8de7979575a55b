"""An errors rule's query: event count, new groups, or absent, per group, over its window.

- `count`: error events (table error_events) whose time is in the window.
- `new_groups`: error groups whose `first_seen` (their earliest event's time) is in the
  window; the value is the number of such groups per group_by group, so with
  `group_by: [fingerprint]` each new group is its own sample (value 1). An attribute
  filter keeps groups with a matching event in the window; an attribute group key takes
  its value from the group's first event. A group whose first event is stored more than
  a window after it happened (a late export) is never counted as new.
- `absent`: no error events matched (app/query/grouped_counts.py).

Filters: service, type, fingerprint (the event's, or the group's for new_groups),
attributes (the event's attributes). Group keys: fingerprint, service, type, or an
attribute key.

Error-group context: when `fingerprint` is a group key, each sample also carries the
labels `service` and `type` of the error group (unless group_by names them: then the
group_by value stays) and the annotations `message` (the group's normalized message) and
`culprit`. Both are fixed when the group is first seen, so an alert's label set stays
the same for the life of the group.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select

from app.db.tables import error_events, error_groups
from app.domain.alert_rules import RuleQuery
from app.query.grouped_counts import (
    WINDOW_END,
    WINDOW_START,
    CountSource,
    GroupContext,
    SampleQuery,
    absent_query,
    attribute_value,
    count_query,
)
from app.query.traces import attribute_condition

_EVENT_COLUMNS = {
    "fingerprint": error_events.c.fingerprint,
    "service": error_events.c.service_name,
    "type": error_events.c.type,
}
_GROUP_COLUMNS = {
    "fingerprint": error_groups.c.fingerprint,
    "service": error_groups.c.service_name,
    "type": error_groups.c.type,
}


def _column_filters(query: RuleQuery, columns: dict[str, Any]) -> list[ColumnElement[bool]]:
    return [
        columns[name] == query.filter(name)
        for name in ("service", "type", "fingerprint")
        if query.filter(name)
    ]


def event_source(project_id: int, query: RuleQuery) -> CountSource:
    keys = [
        (
            name,
            _EVENT_COLUMNS[name]
            if name in _EVENT_COLUMNS
            else attribute_value(name, error_events.c.attributes),
        )
        for name in query.group_by
    ]
    return CountSource(
        table=error_events,
        time=error_events.c.time,
        conditions=[
            error_events.c.project_id == project_id,
            *_column_filters(query, _EVENT_COLUMNS),
            *(
                attribute_condition(error_events.c.attributes, key, value)
                for key, value in query.attribute_filters
            ),
        ],
        keys=keys,
    )


def _of_group(project_id: int) -> ColumnElement[bool]:
    return and_(
        error_events.c.project_id == project_id,
        error_events.c.fingerprint == error_groups.c.fingerprint,
    )


def new_group_source(project_id: int, query: RuleQuery) -> CountSource:
    conditions: list[ColumnElement[bool]] = [
        error_groups.c.project_id == project_id,
        # Implied by first_seen > start (last_seen >= first_seen); lets the planner use
        # the (project_id, last_seen) index instead of reading every group.
        error_groups.c.last_seen > WINDOW_START,
        *_column_filters(query, _GROUP_COLUMNS),
    ]
    if query.attribute_filters:
        conditions.append(
            exists().where(
                _of_group(project_id),
                error_events.c.time > WINDOW_START,
                error_events.c.time <= WINDOW_END,
                *(
                    attribute_condition(error_events.c.attributes, key, value)
                    for key, value in query.attribute_filters
                ),
            )
        )
    keys = []
    for name in query.group_by:
        if name in _GROUP_COLUMNS:
            keys.append((name, _GROUP_COLUMNS[name]))
            continue
        first_event = (
            select(attribute_value(name, error_events.c.attributes))
            .where(_of_group(project_id), error_events.c.time >= error_groups.c.first_seen)
            .order_by(error_events.c.time)
            .limit(1)
            .scalar_subquery()
        )
        keys.append((name, first_event))
    return CountSource(error_groups, error_groups.c.first_seen, conditions, keys)


def group_context(project_id: int, query: RuleQuery) -> GroupContext | None:
    """The error group's service, type, message and culprit, when grouped by fingerprint."""
    if "fingerprint" not in query.group_by:
        return None
    groups = error_groups.alias("error_group")
    return GroupContext(
        key="fingerprint",
        table=groups,
        join_on=lambda fingerprint: and_(
            groups.c.project_id == project_id, groups.c.fingerprint == fingerprint
        ),
        labels=(("service", groups.c.service_name), ("type", groups.c.type)),
        annotations=(("message", groups.c.message), ("culprit", groups.c.culprit)),
    )


def error_query(project_id: int, query: RuleQuery) -> SampleQuery:
    context = group_context(project_id, query)
    if query.aggregation == "new_groups":
        return count_query(replace(new_group_source(project_id, query), context=context))
    source = replace(event_source(project_id, query), context=context)
    if query.aggregation == "count":
        return count_query(source)
    if query.aggregation == "absent":
        return absent_query(source)
    raise ValueError(f"errors rules have no aggregation {query.aggregation!r}")
