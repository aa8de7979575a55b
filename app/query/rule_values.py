"""What a rule's query yields now: one `RuleSample` per group, for every signal a user rule reads.

Contract of `rule_samples(connection, project_id, spec, now)` (DESIGN.md, "Rules"):
samples for `spec.signal` in spans / logs / metrics / errors over the window
`(now - window, now]`, one per group (labels = the group_by values as text, "" when
missing); `absent` yields `{labels: {}, value: 1}` when nothing matched, or with group_by
one sample per group seen in the 24h before the window but not in it. Only reads; every
statement filters on `project_id`.

Signal `slo` is not read here: SLO-owned rules are evaluated by the SLO code
(app/workers/slo_alerts.py), which the evaluator calls itself.

Logs and errors queries are built once per (project, query) and reused (a bounded
cache): only the window's bounds change from one evaluation to the next.

`statement_timeout` bounds each statement of the current transaction (the evaluator runs
many rules per transaction, the preview one); `is_statement_timeout` recognises the
cancellation it causes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.alert_rules import RuleQuery, RuleSample, RuleSpec
from app.query.error_samples import error_query
from app.query.grouped_counts import SampleQuery, run, window_bounds
from app.query.log_samples import log_query
from app.query.metric_samples import metric_samples
from app.query.span_samples import span_samples

# SQLSTATE of a statement cancelled by statement_timeout (query_canceled).
QUERY_CANCELED = "57014"


# Built queries of logs and errors rules, reused while a rule's query stays the same.
_BUILDERS: dict[str, Callable[[int, RuleQuery], SampleQuery]] = {
    "logs": log_query,
    "errors": error_query,
}


@lru_cache(maxsize=4096)
def _built(signal: str, project_id: int, query_json: str) -> SampleQuery:
    return _BUILDERS[signal](project_id, RuleQuery.model_validate_json(query_json))


async def rule_samples(
    connection: AsyncConnection, project_id: int, spec: RuleSpec, now: datetime
) -> list[RuleSample]:
    signal = spec.signal
    if signal in _BUILDERS:
        built = _built(signal, project_id, spec.query.model_dump_json())
        return await run(connection, built, *window_bounds(spec.query, now))
    if signal == "spans":
        return await span_samples(connection, project_id, spec.query, now)
    if signal == "metrics":
        return await metric_samples(connection, project_id, spec.query, now)
    raise ValueError(f"rules over {signal!r} are not read by rule_samples")


async def statement_timeout(connection: AsyncConnection, seconds: float) -> None:
    """Cancel any statement of the current transaction that runs longer than `seconds`."""
    milliseconds = max(1, round(seconds * 1000))
    await connection.execute(
        select(func.set_config("statement_timeout", f"{milliseconds}ms", True))
    )


def is_statement_timeout(error: BaseException) -> bool:
    """True for the error a statement cancelled by statement_timeout raises (any wrapper)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "sqlstate", None) == QUERY_CANCELED:
            return True
        if getattr(current, "pgcode", None) == QUERY_CANCELED:
            return True
        current = getattr(current, "orig", None) or current.__cause__
    return False
