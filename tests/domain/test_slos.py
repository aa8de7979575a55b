"""SLO validation and the error-budget arithmetic, with exact values on synthetic minutes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from slo_kit import slo_body

from app.domain.error_budget import (
    BURN_RATE_WINDOWS,
    Counts,
    MinutesAndHours,
    alert_windows,
    budget_share,
    burn_rate,
    check_burn_rates,
    error_budget,
    history_bounds,
    history_points,
    history_times,
    hour_floor,
    partial_ranges,
    policy,
    sli,
    slo_status,
    time_to_exhaustion_s,
    window_end,
)
from app.domain.slos import InvalidSlo, owned_rules, parse_slo

DAY = 86_400


def body(**changes: Any) -> dict[str, Any]:
    return slo_body(**{"name": "chat availability", **changes})


def test_a_valid_slo_gets_its_defaults_and_round_trips() -> None:
    filters = {"name": "POST /chat", "attributes": {"deployment.environment": "prod", "tier": 2}}
    spec = parse_slo(body(sli={"type": "latency", "threshold_ms": 2000, "filters": filters}))
    document = spec.document()
    assert document == {
        "name": "chat availability",
        "service": "assistant-api",
        "sli": {
            "type": "latency",
            "threshold_ms": 2000.0,
            "filters": {
                "category": "request",
                "name": "POST /chat",
                "attributes": {"deployment.environment": "prod", "tier": "2"},
            },
        },
        "objective": 99.9,
        "window": "30d",
        "policy": {"warn_below": 0.25},
        "alerting": {"min_events": 100, "channels": [], "enabled": True},
        "description": "",
    }
    assert parse_slo(document) == spec
    assert spec.window_s == 30 * DAY


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"objective": 100}, "objective: must be above 0 and below 100"),
        ({"objective": 0}, "objective: must be above 0 and below 100"),
        ({"objective": "99.9"}, "objective: must be a number"),
        ({"objective": True}, "objective: must be a number"),
        ({"window": "12h"}, "window: must be from 1d to 90d"),
        ({"window": "91d"}, "window: must be from 1d to 90d"),
        ({"window": "7d30s"}, "window: must be a whole number of minutes"),
        ({"window": "a month"}, "window: invalid duration"),
        ({"name": ""}, "name: must not be empty"),
        ({"name": "x" * 181}, "name: must be at most 180 characters"),
        ({"service": "a\nb"}, "service: must not contain control characters"),
        ({"sli": {"type": "uptime"}}, "sli.type: Input should be 'availability' or 'latency'"),
        ({"sli": {"type": "latency"}}, "sli.threshold_ms: required for a latency SLI"),
        (
            {"sli": {"type": "availability", "threshold_ms": 100}},
            "sli.threshold_ms: only latency SLIs take a threshold",
        ),
        ({"sli": {"type": "latency", "threshold_ms": 0}}, "sli.threshold_ms: must be above 0"),
        ({"sli": {"type": "availability", "filters": {"status": "ok"}}}, "sli.filters.status"),
        (
            {"sli": {"type": "availability", "filters": {"kind": "SERVER"}}},
            "sli.filters.kind: Input should be 'internal'",
        ),
        (
            {"sli": {"type": "availability", "filters": {"attributes": {"a": [1]}}}},
            "sli.filters.attributes: a: must be a string, number or boolean",
        ),
        ({"policy": {"warn_below": 1}}, "policy.warn_below: must be a share of the budget"),
        ({"alerting": {"min_events": -1}}, "alerting.min_events: must be a whole number"),
        ({"alerting": {"channels": [0]}}, "alerting.channels: must be channel ids"),
        ({"owner": "me"}, "owner: unknown field"),
    ],
)
def test_invalid_slos_name_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSlo) as caught:
        parse_slo(body(**changes))
    assert message in str(caught.value)


def test_missing_fields_and_non_objects() -> None:
    with pytest.raises(InvalidSlo, match="name: required; service: required; sli: required"):
        parse_slo({})
    with pytest.raises(InvalidSlo, match="JSON object"):
        parse_slo([1])


def test_owned_rules_carry_the_slo_and_its_alerting() -> None:
    spec = parse_slo(body(alerting={"channels": [4, 4, 9], "enabled": False}))
    rules = owned_rules(spec, 12)
    burn, budget = rules["slo_burn_rate"], rules["slo_budget_policy"]
    assert burn.name == "SLOBurnRate:chat availability"
    assert budget.name == "SLOBudgetPolicy:chat availability"
    for rule in (burn, budget):
        assert rule.signal == "slo"
        assert rule.query.filters == {"slo_id": 12}
        assert rule.channels == [4, 9]
        assert rule.enabled is False
    assert (burn.query.aggregation, budget.query.aggregation) == ("burn_rate", "budget_policy")


def test_budget_share_is_the_objective_as_written() -> None:
    assert budget_share(99.9) == Fraction(1, 1000)
    assert budget_share(99.95) == Fraction(1, 2000)
    assert budget_share(99) == Fraction(1, 100)
    assert budget_share(90.5) == Fraction(19, 200)


def test_sli_and_burn_rates() -> None:
    assert sli(Counts(990, 1000)) == 0.99
    assert sli(Counts()) is None
    assert burn_rate(Counts(990, 1000), 99.9) == 10.0  # 1% bad against a 0.1% budget
    assert burn_rate(Counts(999, 1000), 99.9) == 1.0  # exactly the sustainable pace
    assert burn_rate(Counts(1000, 1000), 99.9) == 0.0
    assert burn_rate(Counts(), 99.9) == 0.0  # no traffic is not a violation
    assert burn_rate(Counts(0, 3), 99.0) == 100.0


def test_error_budget_in_events_and_as_a_ratio() -> None:
    budget = error_budget(Counts(99_950, 100_000), 99.9)
    assert (budget.total, budget.consumed, budget.remaining, budget.remaining_ratio) == (
        100.0,
        50,
        50.0,
        0.5,
    )
    overspent = error_budget(Counts(99_850, 100_000), 99.9)
    assert (overspent.remaining, overspent.remaining_ratio) == (-50.0, -0.5)
    empty = error_budget(Counts(), 99.9)
    assert (empty.total, empty.consumed, empty.remaining, empty.remaining_ratio) == (
        0.0,
        0,
        0.0,
        1.0,
    )


def test_time_to_exhaustion_at_the_last_hours_burn() -> None:
    half_left = Counts(99_950, 100_000)  # 0.5 of the budget left
    burning_10x = Counts(990, 1000)
    # At 10x a 30-day budget lasts 3 days; half of it 1.5 days.
    assert time_to_exhaustion_s(half_left, burning_10x, 99.9, 30 * DAY) == 129_600.0
    assert time_to_exhaustion_s(half_left, Counts(1000, 1000), 99.9, 30 * DAY) is None
    assert time_to_exhaustion_s(half_left, Counts(), 99.9, 30 * DAY) is None
    spent = Counts(99_900, 100_000)
    assert time_to_exhaustion_s(spent, burning_10x, 99.9, 30 * DAY) is None


def test_policy_states() -> None:
    assert policy(0.5, 0.25) == "ok"
    assert policy(0.25, 0.25) == "ok"
    assert policy(0.2499, 0.25) == "warn"
    assert policy(0.0, 0.25) == "freeze"
    assert policy(-0.3, 0.25) == "freeze"
    assert policy(0.01, 0.0) == "ok"


@pytest.mark.parametrize(
    ("window_days", "thresholds"),
    [
        (30, {"1h": 14.4, "6h": 6.0, "1d": 3.0, "3d": 1.0}),
        (28, {"1h": 13.44, "6h": 5.6, "1d": 2.8, "3d": 0.9333333333333333}),
        (7, {"1h": 3.36, "6h": 1.4, "1d": 0.7, "3d": 0.23333333333333334}),
        (2, {"1h": 0.96, "6h": 0.4, "1d": 0.2}),  # the 3d row does not fit a 2d window
        (1, {"1h": 0.48, "6h": 0.2, "1d": 0.1}),
    ],
)
def test_thresholds_spend_the_same_share_of_any_window(
    window_days: int, thresholds: dict[str, float]
) -> None:
    rows = alert_windows(window_days * DAY)
    assert {row.long_window: float(row.threshold(window_days * DAY)) for row in rows} == (
        thresholds
    )
    assert [(row.severity, row.short_window, row.budget_percent) for row in rows] == [
        ("page", "5m", 2),
        ("page", "30m", 5),
        ("ticket", "2h", 10),
        ("ticket", "6h", 10),
    ][: len(rows)]


def _windows(**bad_per_thousand: int) -> dict[str, Counts]:
    """1000 events in every burn window, with the given bad events per window."""
    return {
        name: Counts(1000 - bad_per_thousand.get(f"w{name}", 0), 1000) for name in BURN_RATE_WINDOWS
    }


def _firing(counts: dict[str, Counts], min_events: int = 100) -> list[str]:
    checks = check_burn_rates(counts, 99.9, 30 * DAY, min_events)
    return [check.row.long_window for check in checks if check.firing]


def test_a_row_fires_only_when_both_windows_burn_above_it() -> None:
    # 99.9%: 15 bad per 1000 is a burn rate of 15, 14 is 14 (the page threshold is 14.4).
    assert _firing(_windows(w1h=15, w5m=15)) == ["1h"]
    assert _firing(_windows(w1h=15, w5m=14)) == []  # the short window has recovered
    assert _firing(_windows(w1h=14, w5m=15)) == []
    assert _firing(_windows(w6h=7, w30m=7)) == ["6h"]
    assert _firing(_windows(w1d=4, w2h=4)) == ["1d"]
    counts = _windows(w3d=2, w6h=2)  # ticket: 2x over 3d and 6h
    checks = {check.row.long_window: check for check in check_burn_rates(counts, 99.9, 30 * DAY, 0)}
    assert checks["3d"].firing and (checks["3d"].long_burn_rate, checks["3d"].short_burn_rate) == (
        2.0,
        2.0,
    )
    assert not checks["1d"].firing


def test_the_low_traffic_guard_holds_back_a_burning_row() -> None:
    counts = {name: Counts(0, 0) for name in BURN_RATE_WINDOWS}
    counts["1h"] = counts["5m"] = Counts(40, 41)  # one failure in 41 requests: 24x
    (page, *_) = check_burn_rates(counts, 99.9, 30 * DAY, min_events=100)
    assert page.burning and page.guarded and not page.firing
    assert page.long_events == 41
    (page, *_) = check_burn_rates(counts, 99.9, 30 * DAY, min_events=41)
    assert page.firing


def test_status_from_synthetic_minutes() -> None:
    window = Counts(99_960, 100_000)  # 40 bad of 100 allowed
    burn = {name: Counts(0, 0) for name in BURN_RATE_WINDOWS}
    burn["5m"] = Counts(95, 100)
    burn["1h"] = Counts(1980, 2000)  # 1% bad: 10x
    status = slo_status(
        window, burn, objective=99.9, window_s=30 * DAY, warn_below=0.25, min_events=100
    )
    assert status.sli == 0.9996
    assert (status.good, status.total, status.no_data) == (99_960, 100_000, False)
    assert status.error_budget.remaining_ratio == 0.6
    assert status.burn_rates == dict.fromkeys(BURN_RATE_WINDOWS, 0.0) | {"5m": 50.0, "1h": 10.0}
    assert status.time_to_exhaustion_s == 0.6 * 30 * DAY / 10  # 155,520 s
    assert status.time_to_exhaustion_s == 155_520.0
    assert status.policy == "ok"
    assert [check.firing for check in status.alerts] == [False, False, False, False]


def test_window_end_is_the_end_of_the_current_minute() -> None:
    assert window_end(datetime(2026, 11, 30, 12, 34, 56, 7, tzinfo=UTC)) == datetime(
        2026, 11, 30, 12, 35, tzinfo=UTC
    )


def _minutes_in(minutes: dict[datetime, Counts], start: datetime, end: datetime) -> Counts:
    total = Counts()
    for minute, counts in minutes.items():
        if start <= minute < end:
            total = total + counts
    return total


def _hours_of(minutes: dict[datetime, Counts]) -> dict[datetime, Counts]:
    hours: dict[datetime, Counts] = {}
    for minute, counts in minutes.items():
        hour = hour_floor(minute)
        hours[hour] = hours.get(hour, Counts()) + counts
    return hours


def _only_partial(
    minutes: dict[datetime, Counts], times: list[datetime]
) -> list[tuple[datetime, Counts]]:
    """The minute rows a read fetches: those of the partial hours only."""
    ranges = partial_ranges(times)
    return [(m, c) for m, c in minutes.items() if any(a <= m < b for a, b in ranges)]


def _random_minutes(seed: int, start: datetime, end: datetime) -> dict[datetime, Counts]:
    rng = random.Random(seed)
    minutes = {}
    for index in range(int((end - start).total_seconds() // 60)):
        if rng.random() < 0.7:
            total = rng.randint(1, 50)
            minutes[start + timedelta(minutes=index)] = Counts(total - rng.randint(0, 2), total)
    return minutes


def test_hours_and_partial_minutes_count_any_range_exactly() -> None:
    origin = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    minutes = _random_minutes(1, origin, origin + timedelta(days=2))
    rng = random.Random(2)
    hours = _hours_of(minutes).items()
    for _ in range(60):
        a = origin + timedelta(minutes=rng.randint(0, 2880))
        b = a + timedelta(minutes=rng.randint(0, 2880))
        counts = MinutesAndHours(hours, _only_partial(minutes, [a, b]))
        assert counts.between(a, b) == _minutes_in(minutes, a, b)
    assert partial_ranges([origin, origin + timedelta(minutes=90)]) == [
        (origin + timedelta(hours=1), origin + timedelta(minutes=90))
    ]


@pytest.mark.parametrize(("step_s", "window_s"), [(3600, DAY), (300, DAY), (420, 2 * DAY)])
def test_history_points_equal_the_definition_minute_by_minute(step_s: int, window_s: int) -> None:
    end = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)
    start = end - timedelta(hours=20)
    first = window_end(end) - timedelta(seconds=window_s) - timedelta(hours=21)
    minutes = _random_minutes(step_s, first, window_end(end))
    times = history_times(start, end, step_s)
    bounds = history_bounds(times, window_s, step_s)
    counts = MinutesAndHours(_hours_of(minutes).items(), _only_partial(minutes, bounds))
    points = history_points(times, counts, 99.5, window_s, step_s)
    assert points[-1].time == window_end(end)
    gaps = {later.time - earlier.time for earlier, later in zip(points, points[1:], strict=False)}
    assert gaps == {timedelta(seconds=step_s)}
    assert points[0].time >= start
    for point in points:
        window = _minutes_in(minutes, point.time - timedelta(seconds=window_s), point.time)
        step = _minutes_in(minutes, point.time - timedelta(seconds=step_s), point.time)
        assert point.sli == sli(window)
        assert point.budget_remaining_ratio == error_budget(window, 99.5).remaining_ratio
        assert point.burn_rate == burn_rate(step, 99.5)


def test_history_refuses_steps_that_do_not_fit() -> None:
    end = datetime(2026, 11, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="whole minutes"):
        history_times(end - timedelta(hours=1), end, 90)
    with pytest.raises(ValueError, match="more than 2000; use a step of at least 22m"):
        history_times(end - timedelta(days=30), end, 60)
