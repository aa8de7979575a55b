"""From one evaluation of a rule to the alert rows to write: pure, over plain data.

`plan_rule` takes the rule, the samples its query yielded, its live (pending or firing)
alerts keyed by fingerprint, and the evaluation time, and returns what changes:

- A sample is active when it says so (`active` set: SLO rules), else when the rule's
  condition holds for its value; an `absent` sample is always active.
- Alert labels: `{severity} | rendered rule labels | sample labels`, and `alertname` =
  the rule's name — except for the rules an SLO owns (signal `slo`), whose samples name
  the alert themselves (`SLOBurnRate`, `SLOBudgetPolicy`, as API.md fixes them) while
  the rule's own name stays unique per project. Rule label templates see the sample's labels and
  value; annotation templates see the alert's final labels, its value, the rule name and
  `$externalURL`. Annotations: rendered rule annotations, then the sample's own.
- Each label set goes through `alert_state.step`; a live alert with no sample this time
  is stepped as inactive (a pending one is dropped, a firing one resolves, or is held
  by keep_firing_for). An inactive alert keeps its value and annotations.
- Only rows that change are returned: inserts (new pending or firing alerts), updates
  (state, value, annotations or timers changed) and deletes (dropped pending alerts).
- More than `MAX_ALERTS_PER_RULE` active label sets fail the rule (`TooManyAlerts`),
  as Prometheus' rule `limit` does: nothing of that evaluation is applied.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from app.domain.alert_rules import RuleSample, RuleSpec
from app.domain.alert_state import Instance, Step, fingerprint, step
from app.domain.templating import TemplateData, render

MAX_ALERTS_PER_RULE = 1000


class TooManyAlerts(ValueError):
    """A rule whose query yields more active label sets than an alert rule may hold."""


@dataclass(frozen=True, slots=True)
class LiveAlert:
    """A pending or firing alert as stored."""

    id: int
    labels: dict[str, str]
    annotations: dict[str, str]
    instance: Instance


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert to write: inserted when `id` is None, else updated."""

    id: int | None
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    instance: Instance


@dataclass(slots=True)
class RuleOutcome:
    inserts: list[AlertRow] = field(default_factory=list)
    updates: list[AlertRow] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)
    # Transitions by name (pending, firing, resolved, dropped).
    events: Counter[str] = field(default_factory=Counter)


def is_active(spec: RuleSpec, sample: RuleSample) -> bool:
    if sample.active is not None:
        return sample.active
    if spec.is_absent or spec.condition is None:
        return True
    return spec.condition.holds(sample.value)


def alert_labels(rule_name: str, spec: RuleSpec, sample: RuleSample) -> dict[str, str]:
    data = TemplateData(sample.value, sample.labels, rule_name)
    rendered = {name: render(template, data) for name, template in spec.labels.items()}
    labels = {"severity": spec.severity, **rendered, **sample.labels, "alertname": rule_name}
    if spec.signal == "slo" and sample.labels.get("alertname"):
        labels["alertname"] = sample.labels["alertname"]
    return labels


def alert_annotations(
    rule_name: str,
    spec: RuleSpec,
    labels: Mapping[str, str],
    value: float,
    extra: Mapping[str, str] | None = None,
    external_url: str = "",
) -> dict[str, str]:
    data = TemplateData(value, labels, rule_name, external_url)
    rendered = {name: render(template, data) for name, template in spec.annotations.items()}
    return {**rendered, **(extra or {})}


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _unchanged(stored: LiveAlert, instance: Instance, annotations: dict[str, str]) -> bool:
    return (
        _same_value(stored.instance.value, instance.value)
        and replace(stored.instance, value=0.0) == replace(instance, value=0.0)
        and stored.annotations == annotations
    )


def _record(
    outcome: RuleOutcome,
    key: str,
    labels: dict[str, str],
    stored: LiveAlert | None,
    moved: Step,
    annotations: dict[str, str],
) -> None:
    if moved.event:
        outcome.events[moved.event] += 1
    if moved.instance is None:
        if stored is not None:
            outcome.deletes.append(stored.id)
        return
    if stored is None:
        outcome.inserts.append(AlertRow(None, key, labels, annotations, moved.instance))
    elif not _unchanged(stored, moved.instance, annotations):
        outcome.updates.append(AlertRow(stored.id, key, labels, annotations, moved.instance))


def plan_rule(
    *,
    rule_name: str,
    spec: RuleSpec,
    samples: Iterable[RuleSample],
    live: Mapping[str, LiveAlert],
    now: datetime,
    external_url: str = "",
    max_alerts: int = MAX_ALERTS_PER_RULE,
) -> RuleOutcome:
    """The changes one evaluation at `now` makes to a rule's alerts."""
    current: dict[str, tuple[dict[str, str], RuleSample, bool]] = {}
    for sample in samples:
        active = is_active(spec, sample)
        labels = alert_labels(rule_name, spec, sample)
        key = fingerprint(labels)
        known = current.get(key)
        if known is None or (active and not known[2]):
            current[key] = (labels, sample, active)
    active_count = sum(1 for _, _, active in current.values() if active)
    if active_count > max_alerts:
        raise TooManyAlerts(
            f"{active_count} label sets match, more than the {max_alerts} alerts a rule may "
            "hold: narrow the filters or group_by"
        )
    outcome = RuleOutcome()
    for_s, keep_s = spec.for_s, spec.keep_firing_for_s
    for key, (labels, sample, active) in current.items():
        stored = live.get(key)
        moved = step(
            stored.instance if stored else None,
            active=active,
            value=sample.value,
            now=now,
            for_s=for_s,
            keep_firing_for_s=keep_s,
        )
        if active and moved.instance is not None:
            annotations = alert_annotations(
                rule_name, spec, labels, moved.instance.value, sample.annotations, external_url
            )
        else:
            annotations = stored.annotations if stored else {}
        _record(outcome, key, labels, stored, moved, annotations)
    for key, stored in live.items():
        if key in current:
            continue
        moved = step(
            stored.instance,
            active=False,
            value=stored.instance.value,
            now=now,
            for_s=for_s,
            keep_firing_for_s=keep_s,
        )
        _record(outcome, key, stored.labels, stored, moved, stored.annotations)
    return outcome
