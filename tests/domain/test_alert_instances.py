"""From samples to alert rows: labels, templates, which rows change, the alert limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain.alert_instances import (
    LiveAlert,
    TooManyAlerts,
    alert_labels,
    plan_rule,
)
from app.domain.alert_rules import RuleSample, parse_rule
from app.domain.alert_state import Instance, fingerprint
from app.domain.builtin_rules import BUILTIN_RULES, builtin_specs, locked_field_changed
from app.domain.merge_patch import merge_patch

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _spec(**overrides: object):
    body = {
        "name": "HighCost",
        "signal": "spans",
        "query": {
            "aggregation": "sum",
            "field": "cost_usd",
            "window": "1h",
            "group_by": ["user.id"],
        },
        "condition": {"op": ">", "threshold": 5},
        "for": "0s",
        "severity": "critical",
        "labels": {"team": "billing", "user.id": "overridden", "who": "{{ $labels.user.id }}"},
        "annotations": {
            "summary": "{{ $labels.user.id }} spent ${{ $value }} ({{ $labels.team }})"
        },
        **overrides,
    }
    return parse_rule(body)


def test_labels_sample_wins_then_rule_labels_and_alertname_is_the_rule() -> None:
    labels = alert_labels("HighCost", _spec(), RuleSample({"user.id": "u1", "alertname": "x"}, 7))
    assert labels == {
        "alertname": "HighCost",
        "severity": "critical",
        "team": "billing",
        "user.id": "u1",
        "who": "u1",
    }


def test_slo_owned_rules_name_their_alerts() -> None:
    spec = parse_rule(
        {
            "name": "SLOBurnRate:chat availability",
            "signal": "slo",
            "query": {"aggregation": "burn_rate", "filters": {"slo_id": 7}},
        },
        internal=True,
    )
    sample = RuleSample({"alertname": "SLOBurnRate", "severity": "page", "slo_id": "7"}, 15.0)
    labels = alert_labels("SLOBurnRate:chat availability", spec, sample)
    assert labels["alertname"] == "SLOBurnRate" and labels["severity"] == "page"


def test_plan_inserts_active_groups_with_rendered_annotations() -> None:
    samples = [RuleSample({"user.id": "u1"}, 7.5), RuleSample({"user.id": "u2"}, 1.0)]
    outcome = plan_rule(rule_name="HighCost", spec=_spec(), samples=samples, live={}, now=NOW)
    assert outcome.events == {"firing": 1}
    [row] = outcome.inserts
    assert row.id is None and row.fingerprint == fingerprint(row.labels)
    assert row.annotations == {"summary": "u1 spent $7.5 (billing)"}
    assert (row.instance.state, row.instance.fired_at) == ("firing", NOW)
    assert outcome.updates == [] and outcome.deletes == []


def _live(spec, sample: RuleSample, state: str, alert_id: int = 1, annotations=None) -> LiveAlert:
    labels = alert_labels("HighCost", spec, sample)
    instance = Instance(state, NOW - timedelta(minutes=5), sample.value, fired_at=NOW)
    return LiveAlert(alert_id, labels, annotations or {}, instance)


def test_only_changed_rows_are_written() -> None:
    spec = _spec()
    sample = RuleSample({"user.id": "u1"}, 7.5)
    unchanged = _live(spec, sample, "firing", annotations={"summary": "u1 spent $7.5 (billing)"})
    key = fingerprint(unchanged.labels)
    same = plan_rule(
        rule_name="HighCost", spec=spec, samples=[sample], live={key: unchanged}, now=NOW
    )
    assert (same.inserts, same.updates, same.deletes) == ([], [], [])

    higher = RuleSample({"user.id": "u1"}, 9.0)
    moved = plan_rule(
        rule_name="HighCost", spec=spec, samples=[higher], live={key: unchanged}, now=NOW
    )
    [row] = moved.updates
    assert (row.id, row.instance.value, row.annotations["summary"]) == (
        1,
        9.0,
        "u1 spent $9 (billing)",
    )


def test_missing_groups_resolve_or_drop_and_keep_their_value() -> None:
    spec = _spec(**{"for": "10m"})
    firing = _live(spec, RuleSample({"user.id": "u1"}, 7.5), "firing", 1, {"summary": "kept"})
    pending = _live(spec, RuleSample({"user.id": "u2"}, 6.0), "pending", 2)
    live = {fingerprint(alert.labels): alert for alert in (firing, pending)}
    outcome = plan_rule(rule_name="HighCost", spec=spec, samples=[], live=live, now=NOW)
    assert outcome.events == {"resolved": 1, "dropped": 1}
    assert outcome.deletes == [2]
    [row] = outcome.updates
    assert (row.id, row.instance.state, row.instance.value) == (1, "resolved", 7.5)
    assert row.annotations == {"summary": "kept"}


def test_absent_and_self_deciding_samples() -> None:
    absent = parse_rule(
        {"name": "Silent", "signal": "logs", "query": {"aggregation": "absent", "window": "10m"}}
    )
    outcome = plan_rule(
        rule_name="Silent", spec=absent, samples=[RuleSample({}, 1.0)], live={}, now=NOW
    )
    assert [row.labels for row in outcome.inserts] == [
        {"alertname": "Silent", "severity": "warning"}
    ]

    decided = [
        RuleSample({"window": "1h"}, 20.0, active=False),
        RuleSample({"window": "5m"}, 0.1, active=True, annotations={"burn": "fast"}),
    ]
    outcome = plan_rule(
        rule_name="HighCost", spec=_spec(labels={}), samples=decided, live={}, now=NOW
    )
    [row] = outcome.inserts
    assert row.labels["window"] == "5m" and row.annotations["burn"] == "fast"


def test_too_many_active_groups_fail_the_rule() -> None:
    samples = [RuleSample({"user.id": str(index)}, 10.0) for index in range(4)]
    with pytest.raises(TooManyAlerts, match="4 label sets"):
        plan_rule(
            rule_name="HighCost", spec=_spec(), samples=samples, live={}, now=NOW, max_alerts=3
        )


def test_builtin_rules_are_valid_and_keep_their_query() -> None:
    assert [key for key, _ in builtin_specs()] == list(BUILTIN_RULES)
    _, spike = builtin_specs()[1]
    stored = spike.document()
    edited = {**stored, "enabled": False, "channels": [3], "labels": {"team": "a"}}
    assert locked_field_changed(stored, edited) is None
    assert locked_field_changed(stored, {**stored, "for": "5m"}) == "for"
    assert (
        locked_field_changed(stored, {**edited, "query": {**stored["query"], "window": "1m"}})
        == "query"
    )


def test_merge_patch_follows_rfc_7396() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None, "h": 1}, "list": [3], "new": {"x": None}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e", "h": 1}, "list": [3], "new": {}}
    assert target["c"] == {"d": "e", "f": "g"}, "the target is not modified"
    assert merge_patch(target, ["replaced"]) == ["replaced"]


def test_annotations_may_link_with_external_url() -> None:
    spec = _spec(annotations={"link": "{{ $externalURL }}/api/v1/alerts?rule={{ $rule }}"})
    outcome = plan_rule(
        rule_name="HighCost",
        spec=spec,
        samples=[RuleSample({"user.id": "u1"}, 7.5)],
        live={},
        now=NOW,
        external_url="https://tc.example",
    )
    assert outcome.inserts[0].annotations == {
        "link": "https://tc.example/api/v1/alerts?rule=HighCost"
    }
