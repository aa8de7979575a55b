"""The alert evaluation round: every due rule → its query → the state machine → `alerts`.

`evaluate_round(engine, settings, now)` contract:
1. Creates the built-in rules projects lack, and claims the due rules (enabled, not
   evaluated in the last 0.8 intervals: app/workers/alert_rows.py), so concurrent rounds
   in several tasks or processes evaluate each rule once.
2. Reads the live alerts of all claimed rules in one query.
3. Evaluates the rules on at most `MAX_CONCURRENCY` pooled connections, many rules per
   read transaction (BEGIN and `SET LOCAL statement_timeout` paid once, not per rule);
   each statement is cancelled after `alert_query_timeout`, and a failed statement ends
   its transaction (the next rule starts a new one).
   Signal `slo` is read by app/workers/slo_alerts.py, the others by
   app/query/rule_values.py. The samples become alert changes through
   app/domain/alert_instances.py (labels, templates, the state machine).
4. Writes every change and each rule's `last_duration_ms` / `last_error` in one
   transaction, prunes resolved alerts older than `alert_resolved_retention`, and
   updates the collector's metrics.

A rule that fails (bad stored spec, query error, timeout, too many alerts) gets
`last_error` and keeps its alerts exactly as they were; the other rules go on. If the
database is unreachable the round raises before or after evaluating (nothing half
written): the job runner logs it and the next round starts over. All state is in
PostgreSQL, so a restarted process continues pending timers and does not re-create
firing alerts. `now` defaults to the wall clock; tests pass it explicitly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.domain.alert_instances import LiveAlert, TooManyAlerts, plan_rule
from app.domain.alert_rules import InvalidRule, RuleSample, RuleSpec, parse_rule
from app.query.rule_values import is_statement_timeout, rule_samples, statement_timeout
from app.store.alert_rules import ensure_builtin_rules
from app.telemetry import (
    ALERT_ROUND_DURATION,
    ALERT_RULES_EVALUATED,
    ALERTS_BY_STATE,
    RULE_EVALUATION_DURATION,
    RULE_EVALUATIONS,
)
from app.workers.alert_rows import (
    ClaimedRule,
    RuleResult,
    alerts_by_state,
    claim_due_rules,
    load_live_alerts,
    prune_resolved,
    write_round,
)
from app.workers.slo_alerts import slo_rule_samples

log = logging.getLogger(__name__)

# Rule queries running at once per process. More does not help on a small machine (the
# queries compete for the same cores) and would take connections the API needs.
MAX_CONCURRENCY = 4
MAX_ERROR_CHARS = 1000


@dataclass(frozen=True, slots=True)
class RoundReport:
    evaluated: int
    failed: int
    timed_out: int
    duration_ms: float
    alerts_written: int
    # Transitions of this round: pending, firing, resolved, dropped.
    events: dict[str, int] = field(default_factory=dict)
    # Rule id → last_error, for the rules that failed.
    errors: dict[int, str] = field(default_factory=dict)


def concurrency(engine: AsyncEngine) -> int:
    """Rules evaluated at once: up to MAX_CONCURRENCY, leaving a pooled connection free."""
    size = getattr(engine.sync_engine.pool, "size", lambda: MAX_CONCURRENCY)()
    return max(1, min(MAX_CONCURRENCY, size - 1))


async def sample_rule(
    connection: AsyncConnection,
    project_id: int,
    spec: RuleSpec,
    now: datetime,
    slo_id: int | None = None,
) -> list[RuleSample]:
    """A rule's samples, read on `connection` (in the caller's transaction)."""
    if spec.signal == "slo":
        return await slo_rule_samples(connection, project_id, spec, slo_id, now)
    return await rule_samples(connection, project_id, spec, now)


def _describe(error: Exception, timeout: str) -> tuple[str, bool]:
    if is_statement_timeout(error):
        return f"the query ran longer than {timeout} (alert_query_timeout) and was cancelled", True
    if isinstance(error, InvalidRule):
        return f"the stored rule is invalid: {error}", False
    if isinstance(error, DBAPIError):
        return f"query failed: {error.orig}"[:MAX_ERROR_CHARS], False
    if isinstance(error, TooManyAlerts):
        return str(error), False
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS], False


class _RuleFailed(Exception):
    def __init__(self, result: RuleResult, query_failed: bool) -> None:
        self.result = result
        self.query_failed = query_failed


async def _evaluate_rule(
    connection: AsyncConnection,
    rule: ClaimedRule,
    live: dict[str, LiveAlert],
    now: datetime,
    settings: Settings,
) -> RuleResult:
    """One rule; raises _RuleFailed carrying the recorded failure (and whether the query
    itself failed, which aborts the connection's transaction)."""
    started = time.perf_counter()
    query_failed = False
    try:
        spec = parse_rule(rule.spec, internal=True)
        query_failed = True
        samples = await sample_rule(connection, rule.project_id, spec, now, rule.slo_id)
        query_failed = False
        outcome = plan_rule(
            rule_name=rule.name,
            spec=spec,
            samples=samples,
            live=live,
            now=now,
            external_url=settings.external_url.rstrip("/"),
        )
    except Exception as error:  # one rule's failure is recorded, never the round's
        message, timed_out = _describe(error, settings.alert_query_timeout)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.warning(
            "alert rule failed",
            extra={"rule_id": rule.id, "project_id": rule.project_id, "error": message},
        )
        failed = RuleResult(rule, elapsed_ms, None, message, timed_out)
        raise _RuleFailed(failed, query_failed) from error
    return RuleResult(rule, (time.perf_counter() - started) * 1000, outcome)


async def _evaluate_all(
    engine: AsyncEngine,
    settings: Settings,
    rules: Sequence[ClaimedRule],
    live: dict[int, dict[str, LiveAlert]],
    now: datetime,
) -> list[RuleResult]:
    waiting = list(reversed(rules))
    results: list[RuleResult] = []
    timeout_s = settings.seconds("alert_query_timeout")

    async def evaluate_in_one_transaction(connection: AsyncConnection) -> None:
        # Many rules per read transaction: BEGIN and the statement timeout are paid once,
        # not per rule. A failed query aborts the transaction; the next rules get a new one.
        async with connection.begin() as transaction:
            await statement_timeout(connection, timeout_s)
            while waiting:
                rule = waiting.pop()
                try:
                    results.append(
                        await _evaluate_rule(connection, rule, live.get(rule.id, {}), now, settings)
                    )
                except _RuleFailed as failure:
                    results.append(failure.result)
                    if failure.query_failed:
                        break
            await transaction.rollback()  # it only read

    async def worker() -> None:
        # One pooled connection per worker for many rules: no checkout (and pre-ping) per
        # rule. A connection broken by an error is replaced.
        while waiting:
            async with engine.connect() as connection:
                while waiting and not connection.invalidated:
                    await evaluate_in_one_transaction(connection)

    # A worker that fails (the database went away) cancels the others: the round fails.
    try:
        async with asyncio.TaskGroup() as workers:
            for _ in range(min(concurrency(engine), len(rules))):
                workers.create_task(worker())
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return results


def _record_metrics(results: Sequence[RuleResult], states: dict[str, int], seconds: float) -> None:
    for result in results:
        outcome = "timeout" if result.timed_out else "failed" if result.error else "ok"
        RULE_EVALUATIONS.labels(outcome).inc()
        RULE_EVALUATION_DURATION.observe(result.duration_ms / 1000)
    ALERT_ROUND_DURATION.observe(seconds)
    ALERT_RULES_EVALUATED.set(len(results))
    for state in ("pending", "firing", "resolved"):
        ALERTS_BY_STATE.labels(state).set(states.get(state, 0))


async def evaluate_round(
    engine: AsyncEngine,
    settings: Settings,
    now: datetime | None = None,
    *,
    project_ids: Sequence[int] | None = None,
) -> RoundReport:
    """Evaluate every due rule (of `project_ids` only, when given) as of `now`."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    async with engine.begin() as connection:
        await ensure_builtin_rules(connection, project_ids)
        rules = await claim_due_rules(
            connection, now, settings.seconds("alert_eval_interval"), project_ids
        )
        live = await load_live_alerts(connection, [rule.id for rule in rules])
    results = await _evaluate_all(engine, settings, rules, live, now) if rules else []
    retention = timedelta(seconds=settings.seconds("alert_resolved_retention"))
    async with engine.begin() as connection:
        written = await write_round(connection, results, now)
        await prune_resolved(connection, now - retention)
        states = await alerts_by_state(connection)
    elapsed = time.perf_counter() - started
    _record_metrics(results, states, elapsed)
    events: Counter[str] = Counter()
    for result in results:
        if result.outcome is not None:
            events.update(result.outcome.events)
    failed = {result.rule.id: result.error for result in results if result.error}
    return RoundReport(
        evaluated=len(results),
        failed=len(failed),
        timed_out=sum(1 for result in results if result.timed_out),
        duration_ms=elapsed * 1000,
        alerts_written=written,
        events=dict(events),
        errors={rule_id: error for rule_id, error in failed.items() if error},
    )
