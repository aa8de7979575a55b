"""What a rule body would do now, without storing it: each group's value and condition.

Contract of `preview_rule`: the body is validated like a stored rule (`name` may be left
out); the query runs as the evaluator runs it (same code, same statement timeout) at
`now`; the answer lists one group per sample with the alert labels and annotations it
would carry, its value (null for NaN), whether the condition holds, and the state a new
alert would take (`firing` when `for` is 0, else `pending`; `inactive` when the
condition does not hold). Groups whose condition holds come first. A query cancelled by
the timeout is an `InvalidRule` naming `query`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.alert_instances import alert_annotations, alert_labels, is_active
from app.domain.alert_rules import InvalidRule, parse_rule
from app.domain.times import iso
from app.query.grouped_counts import window_bounds
from app.query.rule_values import is_statement_timeout, rule_samples, statement_timeout

PREVIEW_NAME = "preview"


async def preview_rule(
    engine: AsyncEngine,
    project_id: int,
    body: Any,
    now: datetime,
    *,
    timeout_s: float,
    external_url: str = "",
) -> dict[str, Any]:
    if isinstance(body, dict) and "name" not in body:
        body = {"name": PREVIEW_NAME, **body}
    spec = parse_rule(body)
    try:
        async with engine.connect() as connection, connection.begin():
            await statement_timeout(connection, timeout_s)
            samples = await rule_samples(connection, project_id, spec, now)
    except Exception as error:
        if is_statement_timeout(error):
            raise InvalidRule(
                f"query: ran longer than {timeout_s:g}s (alert_query_timeout) and was "
                "cancelled; narrow the filters or shorten the window"
            ) from None
        raise
    groups = []
    for sample in samples:
        active = is_active(spec, sample)
        labels = alert_labels(spec.name, spec, sample)
        value = None if math.isnan(sample.value) else sample.value
        state = ("firing" if spec.for_s <= 0 else "pending") if active else "inactive"
        annotations = alert_annotations(
            spec.name, spec, labels, sample.value, sample.annotations, external_url
        )
        groups.append(
            {
                "labels": labels,
                "annotations": annotations,
                "value": value,
                "condition_holds": active,
                "state": state,
            }
        )
    groups.sort(key=lambda group: (not group["condition_holds"], sorted(group["labels"].items())))
    start, end = window_bounds(spec.query, now)
    return {
        "evaluated_at": iso(now),
        "window": {"start": iso(start), "end": iso(end)},
        "groups": groups,
    }
