"""What an SLO's own alert rules (signal `slo`) yield at one evaluation.

The alert evaluator calls `slo_rule_samples` for rules whose signal is `slo`; the rule's
`query.aggregation` says which:
- `burn_rate`: one active sample per row of the multiwindow multi-burn-rate table whose
  long and short windows both burn above the row's threshold, with at least
  `alerting.min_events` events in the long window (app/domain/error_budget.py). Labels:
  alertname="SLOBurnRate", slo, slo_id, severity (page, ticket), long_window,
  short_window; value = the long window's burn rate; annotations say which windows fired,
  both burn rates, the threshold and the budget left. No sample once the burn stops, so
  the alert resolves.
- `budget_policy`: one active sample while the policy is `warn` or `freeze` (labels
  alertname="SLOBudgetPolicy", slo, slo_id, policy, severity warning / critical; value =
  remaining_ratio). warn -> freeze changes the label set: one alert resolves, the other
  fires, so each transition is notified through channels and silences.
An SLO that no longer exists yields nothing. Reads only `slo_minutes`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.alert_rules import RuleSample, RuleSpec
from app.domain.error_budget import BurnRateCheck, SloStatus
from app.domain.slos import BUDGET_POLICY_ALERT, BURN_RATE_ALERT
from app.query.slos import evaluate
from app.store.slos import Slo, get_slo


def _number(value: float) -> str:
    return f"{value:.4g}"


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def burn_rate_samples(slo: Slo, status: SloStatus) -> list[RuleSample]:
    samples = []
    left = status.error_budget.remaining_ratio
    for check in status.alerts:
        if not check.firing:
            continue
        samples.append(
            RuleSample(
                labels={
                    "alertname": BURN_RATE_ALERT,
                    "slo": slo.spec.name,
                    "slo_id": str(slo.id),
                    "severity": check.row.severity,
                    "long_window": check.row.long_window,
                    "short_window": check.row.short_window,
                },
                value=check.long_burn_rate,
                active=True,
                annotations={
                    "description": _describe(slo, check, left),
                    "windows": f"{check.row.long_window} and {check.row.short_window}",
                    "long_window_burn_rate": _number(check.long_burn_rate),
                    "short_window_burn_rate": _number(check.short_burn_rate),
                    "threshold": _number(check.threshold),
                    "budget_remaining_ratio": _number(left),
                },
            )
        )
    return samples


def _describe(slo: Slo, check: BurnRateCheck, left: float) -> str:
    row = check.row
    return (
        f"SLO {slo.spec.name} burns its error budget {_number(check.long_burn_rate)}x over "
        f"{row.long_window} and {_number(check.short_burn_rate)}x over {row.short_window}, "
        f"both above {_number(check.threshold)}x ({row.budget_percent}% of the "
        f"{slo.spec.window} budget in {row.long_window}); {_percent(left)} of the budget left."
    )


def budget_policy_samples(slo: Slo, status: SloStatus) -> list[RuleSample]:
    if status.policy == "ok":
        return []
    left = status.error_budget.remaining_ratio
    if status.policy == "freeze":
        what = (
            f"the error budget of SLO {slo.spec.name} is spent ({_percent(left)} left over "
            f"{slo.spec.window}): freeze risky deploys; the deploy gate answers 409"
        )
    else:
        what = (
            f"the error budget of SLO {slo.spec.name} is below "
            f"{_percent(slo.spec.policy.warn_below)}: {_percent(left)} left over {slo.spec.window}"
        )
    return [
        RuleSample(
            labels={
                "alertname": BUDGET_POLICY_ALERT,
                "slo": slo.spec.name,
                "slo_id": str(slo.id),
                "policy": status.policy,
                "severity": "critical" if status.policy == "freeze" else "warning",
            },
            value=left,
            active=True,
            annotations={"description": what, "budget_remaining_ratio": _number(left)},
        )
    ]


async def slo_rule_samples(
    connection: AsyncConnection, project_id: int, spec: RuleSpec, slo_id: int, now: datetime
) -> list[RuleSample]:
    """The samples of one SLO-owned rule at `now` (see the module doc)."""
    slo = await get_slo(connection, project_id, slo_id)
    if slo is None:
        return []
    status = await evaluate(connection, slo, now)
    if spec.query.aggregation == "burn_rate":
        return burn_rate_samples(slo, status)
    if spec.query.aggregation == "budget_policy":
        return budget_policy_samples(slo, status)
    raise ValueError(f"query.aggregation {spec.query.aggregation!r} is not an SLO rule's")
