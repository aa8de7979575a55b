"""Rule validation: every kind of bad rule is refused with the field named and the fix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.domain.alert_rules import (
    InvalidRule,
    RuleSpec,
    holds,
    parse_rule,
)


def rule(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "LLM error rate",
        "signal": "spans",
        "query": {
            "aggregation": "error_rate",
            "filters": {"category": "llm"},
            "window": "5m",
            "group_by": ["model"],
        },
        "condition": {"op": ">", "threshold": 0.05},
        "for": "5m",
        "severity": "critical",
        "annotations": {
            "summary": "{{ $labels.model }} fails {{ $value | humanizePercentage }}",
            "runbook_url": "https://runbooks.example/llm-errors",
        },
    }
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def with_query(**query: Any) -> dict[str, Any]:
    body = rule()
    body["query"] = {**body["query"], **query}
    return body


def test_a_good_rule_round_trips_through_its_stored_form() -> None:
    spec = parse_rule(rule())
    document = spec.document()
    assert document["for"] == "5m" and spec.for_s == 300
    assert document["keep_firing_for"] == "0s"
    assert document["enabled"] is True and document["channels"] == []
    assert parse_rule(copy.deepcopy(document)).document() == document


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (rule(name=""), "name"),
        (rule(name="a\x00b"), "name"),
        (rule(name="x" * 201), "name"),
        (rule(signal="traces"), "signal"),
        (rule(severity="page"), "severity"),
        (rule(condition={"op": "=>", "threshold": 1}), "condition.op"),
        (rule(condition={"op": ">", "threshold": "high"}), "condition.threshold"),
        (rule(condition={"op": ">"}), "condition.threshold"),
        (rule(condition=None), "condition"),
        (rule(**{"for": "soon"}), "for"),
        (rule(**{"for": "-5m"}), "for"),
        (rule(**{"for": "40d"}), "for"),
        (rule(keep_firing_for="x"), "keep_firing_for"),
        (rule(labels={"alertname": "x"}), "labels"),
        (rule(labels={"1bad": "x"}), "labels"),
        (rule(labels={"team": "{{ $nope }}"}), "labels"),
        (rule(annotations={"summary": "{{ $value "}), "annotations"),
        (rule(annotations={"runbook_url": "ftp://x"}), "annotations"),
        (rule(channels=["slack"]), "channels"),
        (rule(channels=[2**70]), "channels"),
        (rule(channels=[0]), "channels"),
        (rule(extra="x"), "extra"),
        (with_query(aggregation="median"), "query.aggregation"),
        (with_query(aggregation="p95", field="cost_usd"), "query.field"),
        (with_query(aggregation="sum"), "query.field"),
        (with_query(aggregation="sum", field="duration_ms"), "query.field"),
        (with_query(aggregation="avg", field="latency"), "query.field"),
        (with_query(aggregation="count", field="cost_usd"), "query.field"),
        (with_query(window="30s"), "query.window"),
        (with_query(window="60d"), "query.window"),
        (with_query(window="five minutes"), "query.window"),
        (with_query(filters={"servce": "api"}), "query.filters.servce"),
        (with_query(filters={"status": "failed"}), "query.filters.status"),
        (with_query(filters={"kind": "http"}), "query.filters.kind"),
        (with_query(filters={"category": "agent"}), "query.filters.category"),
        (with_query(filters={"service": ""}), "query.filters.service"),
        (with_query(filters={"service": 5}), "query.filters.service"),
        (with_query(filters={"attributes": ["user.id"]}), "query.filters.attributes"),
        (with_query(filters={"attributes": {"user.id": {"a": 1}}}), "query.filters.attributes"),
        (with_query(group_by=["model", "model"]), "query.group_by"),
        (with_query(group_by=[""]), "query.group_by"),
        (with_query(group_by=[f"k{i}" for i in range(9)]), "query.group_by"),
        (with_query(metric="x"), "query.metric"),
        (with_query(type="gauge"), "query.type"),
        (with_query(unknown=1), "query.unknown"),
    ],
)
def test_bad_rules_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRule) as raised:
        parse_rule(body)
    assert str(raised.value).startswith(field), str(raised.value)


def test_absent_rules_take_no_condition() -> None:
    body = rule(condition=None)
    body["query"] = {"aggregation": "absent", "filters": {"service": "assistant"}, "window": "10m"}
    spec = parse_rule(body)
    assert spec.is_absent and spec.condition is None
    body["condition"] = {"op": ">", "threshold": 0}
    with pytest.raises(InvalidRule, match="^condition: an absent rule"):
        parse_rule(body)


@pytest.mark.parametrize(
    "query",
    [
        {"aggregation": "count", "filters": {"level": "error", "q": "rate limited"}},
        {"aggregation": "rate", "group_by": ["service", "user.id"]},
    ],
)
def test_log_rules(query: dict[str, Any]) -> None:
    parse_rule(rule(signal="logs", query=query))


def test_log_rule_with_a_span_filter_is_refused() -> None:
    with pytest.raises(InvalidRule, match="^query.filters.model: not a filter of logs"):
        parse_rule(rule(signal="logs", query={"aggregation": "count", "filters": {"model": "x"}}))
    with pytest.raises(InvalidRule, match="^query.filters.level"):
        parse_rule(rule(signal="logs", query={"aggregation": "count", "filters": {"level": "x"}}))


def test_metric_rules_need_a_metric_and_a_metric_aggregation() -> None:
    good = {"aggregation": "p95", "metric": "gen_ai.client.operation.duration", "window": "5m"}
    assert parse_rule(rule(signal="metrics", query=good)).query.metric
    with pytest.raises(InvalidRule, match="^query.metric: required"):
        parse_rule(rule(signal="metrics", query={"aggregation": "sum"}))
    with pytest.raises(InvalidRule, match="^query.aggregation"):
        parse_rule(rule(signal="metrics", query={"aggregation": "error_rate", "metric": "m"}))
    with pytest.raises(InvalidRule, match="^query.type"):
        parse_rule(rule(signal="metrics", query={**good, "type": "counter"}))


def test_error_rules() -> None:
    spec = parse_rule(
        rule(
            signal="errors",
            query={"aggregation": "new_groups", "group_by": ["fingerprint"], "window": "10m"},
            condition={"op": ">", "threshold": 0},
        )
    )
    assert spec.query.group_by == ["fingerprint"]


def test_per_user_cost_rule_is_one_rule() -> None:
    spec = parse_rule(
        rule(
            query={
                "aggregation": "sum",
                "field": "cost_usd",
                "window": "1h",
                "group_by": ["user.id"],
            },
            condition={"op": ">", "threshold": 5},
        )
    )
    assert spec.query.field == "cost_usd" and spec.query.window_s == 3600


def test_defaults_fill_in_fields() -> None:
    spec = parse_rule(with_query(aggregation="p95"))
    assert spec.query.field == "duration_ms"
    avg = parse_rule(with_query(aggregation="avg"))
    assert avg.query.field == "duration_ms"


def test_attribute_filter_values_become_text() -> None:
    spec = parse_rule(with_query(filters={"attributes": {"retry": True, "http.status": 500}}))
    assert spec.query.attribute_filters == (("http.status", "500"), ("retry", "true"))


def test_slo_rules_are_internal_only() -> None:
    body = {
        "name": "SLOBurnRate:chat",
        "signal": "slo",
        "query": {"aggregation": "burn_rate", "filters": {"slo_id": 3}},
    }
    with pytest.raises(InvalidRule, match="^signal"):
        parse_rule(body)
    assert isinstance(parse_rule(body, internal=True), RuleSpec)


def test_body_must_be_an_object() -> None:
    with pytest.raises(InvalidRule, match="JSON object"):
        parse_rule(["not", "a", "rule"])


@pytest.mark.parametrize(
    ("op", "value", "threshold", "expected"),
    [
        (">", 2, 1, True),
        (">", 1, 1, False),
        (">=", 1, 1, True),
        ("<", 0.5, 1, True),
        ("<=", 1, 1, True),
        ("==", 1, 1, True),
        ("!=", 1, 1, False),
        (">", float("nan"), 0, False),
        ("!=", float("nan"), 0, False),
    ],
)
def test_condition_operators(op: str, value: float, threshold: float, expected: bool) -> None:
    assert holds(op, value, threshold) is expected
