"""The SQL of an evaluation round: claim due rules, read live alerts, write what changed.

- `claim_due_rules`: enabled rules not evaluated in the last 0.8 intervals (or never, or
  "in the future": the clock went back more than an interval) get `last_evaluated_at =
  now` in one UPDATE over `FOR UPDATE SKIP LOCKED` rows, and are returned. Two rounds at
  once (two processes, two tasks) therefore never take the same rule.
- `load_live_alerts`: the pending and firing alerts of the claimed rules, in one query.
- `write_round`: in one transaction, locks the claimed rules that still exist and are
  enabled (in id order, as the API's updates lock them, so neither waits on the other
  in a cycle), then applies their alert changes (inserts, updates, deletes of dropped
  pending alerts) and records each rule's duration and error. A rule disabled or
  deleted meanwhile has had its alerts retired by the API: its changes are dropped.
- `prune_resolved`, `alerts_by_state`: housekeeping and the gauge's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Double,
    Text,
    any_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.tables import alert_rules, alerts
from app.domain.alert_instances import AlertRow, LiveAlert, RuleOutcome
from app.domain.alert_state import Instance

# A rule is due again after this fraction of the interval, so a round that starts a
# little early (timer jitter, another process) still evaluates it once per interval.
DUE_FRACTION = 0.8


@dataclass(frozen=True, slots=True)
class ClaimedRule:
    id: int
    project_id: int
    name: str
    spec: dict[str, Any]
    slo_id: int | None


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's evaluation: its changes, or the error that left its alerts as they were."""

    rule: ClaimedRule
    duration_ms: float
    outcome: RuleOutcome | None
    error: str | None = None
    timed_out: bool = False


def _ids(values: Sequence[int]) -> Any:
    return any_(cast(list(values), ARRAY(BigInteger)))


async def claim_due_rules(
    connection: AsyncConnection,
    now: datetime,
    interval_s: float,
    project_ids: Sequence[int] | None = None,
) -> list[ClaimedRule]:
    last = alert_rules.c.last_evaluated_at
    due = (
        select(alert_rules.c.id)
        .where(
            alert_rules.c.enabled,
            or_(
                last.is_(None),
                last <= now - timedelta(seconds=DUE_FRACTION * interval_s),
                last > now + timedelta(seconds=interval_s),
            ),
        )
        .order_by(alert_rules.c.id)
        .with_for_update(skip_locked=True)
    )
    if project_ids is not None:
        due = due.where(alert_rules.c.project_id == _ids(project_ids))
    rows = await connection.execute(
        update(alert_rules)
        .where(alert_rules.c.id.in_(due.scalar_subquery()))
        .values(last_evaluated_at=now)
        .returning(
            alert_rules.c.id,
            alert_rules.c.project_id,
            alert_rules.c.name,
            alert_rules.c.spec,
            alert_rules.c.slo_id,
        )
    )
    return [ClaimedRule(*row) for row in rows.all()]


async def load_live_alerts(
    connection: AsyncConnection, rule_ids: Sequence[int]
) -> dict[int, dict[str, LiveAlert]]:
    """{rule id: {fingerprint: alert}} of the pending and firing alerts of these rules."""
    live: dict[int, dict[str, LiveAlert]] = {}
    if not rule_ids:
        return live
    rows = await connection.execute(
        select(alerts).where(alerts.c.rule_id == _ids(rule_ids), alerts.c.state != "resolved")
    )
    for row in rows.all():
        instance = Instance(
            state=row.state,
            active_at=row.active_at,
            value=float("nan") if row.value is None else row.value,
            fired_at=row.fired_at,
            resolved_at=row.resolved_at,
            keep_firing_since=row.keep_firing_since,
        )
        alert = LiveAlert(row.id, row.labels, row.annotations, instance)
        live.setdefault(row.rule_id, {})[row.fingerprint] = alert
    return live


def _state_values(row: AlertRow, now: datetime) -> dict[str, Any]:
    instance = row.instance
    return {
        "b_state": instance.state,
        "b_value": instance.value,
        "b_annotations": row.annotations,
        "b_active_at": instance.active_at,
        "b_fired_at": instance.fired_at,
        "b_resolved_at": instance.resolved_at,
        "b_keep_firing_since": instance.keep_firing_since,
        "b_now": now,
    }


# What a step of the state machine changes, bound per row (`_state_values`).
_STATE_COLUMNS = {
    "state": bindparam("b_state"),
    "value": bindparam("b_value"),
    "annotations": bindparam("b_annotations", type_=JSONB),
    "active_at": bindparam("b_active_at"),
    "fired_at": bindparam("b_fired_at"),
    "resolved_at": bindparam("b_resolved_at"),
    "keep_firing_since": bindparam("b_keep_firing_since"),
    "last_evaluated_at": bindparam("b_now"),
}
_UPDATE_ALERT = (
    update(alerts)
    .where(alerts.c.id == bindparam("b_id"), alerts.c.state != "resolved")
    .values(**_STATE_COLUMNS)
)
_INSERT_ALERT = (
    pg_insert(alerts)
    .values(
        project_id=bindparam("b_project_id"),
        rule_id=bindparam("b_rule_id"),
        rule_name=bindparam("b_rule_name"),
        fingerprint=bindparam("b_fingerprint"),
        labels=bindparam("b_labels", type_=JSONB),
        **_STATE_COLUMNS,
    )
    # The live-alert unique index: a row another evaluator wrote first stays.
    .on_conflict_do_nothing(
        index_elements=["rule_id", "fingerprint"], index_where=alerts.c.state != "resolved"
    )
)


def _bookkeeping(results: Sequence[RuleResult]) -> Any:
    """One UPDATE for every rule of the round: its duration and error (or none)."""
    evaluated = select(
        func.unnest(cast([r.rule.id for r in results], ARRAY(BigInteger))).label("id"),
        func.unnest(cast([r.duration_ms for r in results], ARRAY(Double))).label("duration_ms"),
        func.unnest(cast([r.error for r in results], ARRAY(Text))).label("error"),
    ).subquery("evaluated")
    return (
        update(alert_rules)
        .where(alert_rules.c.id == evaluated.c.id)
        .values(last_duration_ms=evaluated.c.duration_ms, last_error=evaluated.c.error)
    )


async def write_round(
    connection: AsyncConnection, results: Sequence[RuleResult], now: datetime
) -> int:
    """Apply the round's changes and bookkeeping; returns how many alert rows changed."""
    if not results:
        return 0
    rule_ids = sorted(result.rule.id for result in results)
    enabled = set(
        await connection.scalars(
            select(alert_rules.c.id)
            .where(alert_rules.c.id == _ids(rule_ids), alert_rules.c.enabled)
            .order_by(alert_rules.c.id)
            .with_for_update(key_share=True)
        )
    )
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    deletes: list[int] = []
    for result in results:
        if result.outcome is None or result.rule.id not in enabled:
            continue
        rule, outcome = result.rule, result.outcome
        deletes.extend(outcome.deletes)
        updates.extend({"b_id": row.id, **_state_values(row, now)} for row in outcome.updates)
        inserts.extend(
            {
                "b_project_id": rule.project_id,
                "b_rule_id": rule.id,
                "b_rule_name": rule.name,
                "b_fingerprint": row.fingerprint,
                "b_labels": row.labels,
                **_state_values(row, now),
            }
            for row in outcome.inserts
        )
    if deletes:
        await connection.execute(
            delete(alerts).where(alerts.c.id == _ids(deletes), alerts.c.state == "pending")
        )
    if updates:
        await connection.execute(_UPDATE_ALERT, updates)
    if inserts:
        await connection.execute(_INSERT_ALERT, inserts)
    await connection.execute(_bookkeeping(results))
    return len(deletes) + len(updates) + len(inserts)


async def prune_resolved(connection: AsyncConnection, before: datetime) -> int:
    result = await connection.execute(
        delete(alerts).where(alerts.c.state == "resolved", alerts.c.resolved_at < before)
    )
    return max(result.rowcount or 0, 0)


async def alerts_by_state(connection: AsyncConnection) -> dict[str, int]:
    rows = await connection.execute(select(alerts.c.state, func.count()).group_by(alerts.c.state))
    return {state: int(count) for state, count in rows.all()}
