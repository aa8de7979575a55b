"""The samples of SLO-owned alert rules: the four burn-rate rows fire and clear at their
thresholds, the low-traffic guard, and the budget policy, on minute counts written
directly and with time given (never slept)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from slo_kit import fill_minutes, make_slo
from sqlalchemy import select

from app.auth import ensure_project
from app.db.tables import alert_rules
from app.domain.alert_rules import RuleSample, parse_rule
from app.domain.slos import parse_slo
from app.store.slos import Slo, delete_slo, update_slo
from app.workers.slo_alerts import slo_rule_samples

# Window ends (minute boundaries) a day back: only these tests write minutes there.
T = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=1)
NOW = T - timedelta(seconds=30)  # any time in the minute before T: windows end at T
HOUR = timedelta(hours=1)


async def _project(engine) -> int:
    return await ensure_project(engine, f"project-{uuid.uuid4().hex[:8]}")


async def samples(engine, slo: Slo, aggregation: str, now: datetime) -> list[RuleSample]:
    builtin = {"burn_rate": "slo_burn_rate", "budget_policy": "slo_budget_policy"}[aggregation]
    async with engine.connect() as connection:
        stored = await connection.scalar(
            select(alert_rules.c.spec).where(
                alert_rules.c.slo_id == slo.id, alert_rules.c.builtin == builtin
            )
        )
        spec = parse_rule(stored, internal=True)
        return await slo_rule_samples(connection, slo.project_id, spec, slo.id, now)


def rows(found: list[RuleSample]) -> list[tuple[str, str, str, float]]:
    return [
        (s.labels["severity"], s.labels["long_window"], s.labels["short_window"], s.value)
        for s in found
    ]


async def steady(engine, window: str = "30d", **changes) -> Slo:
    """An SLO with 1000 good events a minute over the three days before T."""
    slo = await make_slo(engine, await _project(engine), window=window, **changes)
    await fill_minutes(engine, slo.id, T - timedelta(days=3), T, 1000, 1000)
    return slo


async def test_page_on_a_fast_burn_and_clear_when_the_short_window_recovers(engine) -> None:
    slo = await steady(engine)
    assert await samples(engine, slo, "burn_rate", NOW) == []
    await fill_minutes(engine, slo.id, T - HOUR, T, 970, 1000)  # 3% bad: 30x
    (page,) = await samples(engine, slo, "burn_rate", NOW)
    assert page.labels == {
        "alertname": "SLOBurnRate",
        "slo": slo.spec.name,
        "slo_id": str(slo.id),
        "severity": "page",
        "long_window": "1h",
        "short_window": "5m",
    }
    assert (page.value, page.active) == (30.0, True)
    # 1,800 bad of 4,320 allowed over the window: 58.3% left.
    assert page.annotations == {
        "description": f"SLO {slo.spec.name} burns its error budget 30x over 1h and 30x over "
        "5m, both above 14.4x (2% of the 30d budget in 1h); 58.3% of the budget left.",
        "windows": "1h and 5m",
        "long_window_burn_rate": "30",
        "short_window_burn_rate": "30",
        "threshold": "14.4",
        "budget_remaining_ratio": "0.5833",
    }
    # Five clean minutes later the 1h window still burns at 27.5x, the 5m one not: resolved.
    await fill_minutes(engine, slo.id, T, T + timedelta(minutes=5), 1000, 1000)
    assert await samples(engine, slo, "burn_rate", NOW + timedelta(minutes=5)) == []


async def test_each_row_fires_above_its_threshold_only(engine) -> None:
    slo = await steady(engine)
    await fill_minutes(engine, slo.id, T - 6 * HOUR, T, 994, 1000)  # 6x: not above 6
    assert await samples(engine, slo, "burn_rate", NOW) == []
    await fill_minutes(engine, slo.id, T - 6 * HOUR, T, 993, 1000)  # 7x over 6h and 30m
    assert rows(await samples(engine, slo, "burn_rate", NOW)) == [("page", "6h", "30m", 7.0)]

    slo = await steady(engine)
    await fill_minutes(engine, slo.id, T - 24 * HOUR, T, 997, 1000)  # 3x over 1d, 1x over 3d
    assert await samples(engine, slo, "burn_rate", NOW) == []  # neither above its threshold
    await fill_minutes(engine, slo.id, T - 24 * HOUR, T, 996, 1000)  # 4x over the last day
    # A bad last day also spends over 10% of the budget in 3 days (4/3x).
    assert rows(await samples(engine, slo, "burn_rate", NOW)) == [
        ("ticket", "1d", "2h", 4.0),
        ("ticket", "3d", "6h", 4 / 3),
    ]


async def test_the_three_day_ticket_and_thresholds_scaled_for_seven_days(engine) -> None:
    slo = await steady(engine)
    await fill_minutes(engine, slo.id, T - 72 * HOUR, T, 998, 1000)  # 2x for three days
    assert rows(await samples(engine, slo, "burn_rate", NOW)) == [("ticket", "3d", "6h", 2.0)]

    # 4x for an hour: below 14.4 for 30 days, above 3.36 (2% of 7 days in an hour).
    thirty, seven = await steady(engine), await steady(engine, window="7d")
    for slo in (thirty, seven):
        await fill_minutes(engine, slo.id, T - HOUR, T, 996, 1000)
    assert await samples(engine, thirty, "burn_rate", NOW) == []
    (page,) = await samples(engine, seven, "burn_rate", NOW)
    assert (page.labels["long_window"], page.annotations["threshold"]) == ("1h", "3.36")


async def test_the_low_traffic_guard(engine) -> None:
    slo = await make_slo(engine, await _project(engine))
    # 60 requests in the last hour, one of them failed in the last 5 minutes: 16.7x.
    await fill_minutes(engine, slo.id, T - HOUR, T, 1, 1)
    await fill_minutes(engine, slo.id, T - timedelta(minutes=2), T - timedelta(minutes=1), 0, 1)
    assert await samples(engine, slo, "burn_rate", NOW) == []  # under 100 events
    body = slo.spec.document() | {"alerting": {"min_events": 60}}
    slo = await update_slo(engine, slo.project_id, slo.id, parse_slo(body), NOW)
    assert slo is not None
    found = rows(await samples(engine, slo, "burn_rate", NOW))
    assert [row[:3] for row in found] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]
    assert {row[3] for row in found} == {1 / 60 / 0.001}


async def test_budget_policy_samples(engine) -> None:
    slo = await make_slo(engine, await _project(engine))
    await fill_minutes(engine, slo.id, T - 24 * HOUR, T, 1000, 1000)  # 1,440 bad allowed
    assert await samples(engine, slo, "budget_policy", NOW) == []
    await fill_minutes(engine, slo.id, T - timedelta(minutes=1152), T, 999, 1000)
    (warn,) = await samples(engine, slo, "budget_policy", NOW)
    assert warn.labels == {
        "alertname": "SLOBudgetPolicy",
        "slo": slo.spec.name,
        "slo_id": str(slo.id),
        "policy": "warn",
        "severity": "warning",
    }
    assert (warn.value, warn.active) == (0.2, True)
    await fill_minutes(engine, slo.id, T - 24 * HOUR, T, 998, 1000)
    (freeze,) = await samples(engine, slo, "budget_policy", NOW)
    assert (freeze.labels["policy"], freeze.labels["severity"], freeze.value) == (
        "freeze",
        "critical",
        -1.0,
    )
    assert "the deploy gate answers 409" in freeze.annotations["description"]


async def test_a_deleted_slo_yields_nothing(engine) -> None:
    slo = await make_slo(engine, await _project(engine))
    async with engine.connect() as connection:
        stored = await connection.scalars(
            select(alert_rules.c.spec).where(alert_rules.c.slo_id == slo.id)
        )
        spec = parse_rule(stored.first(), internal=True)
    assert await delete_slo(engine, slo.project_id, slo.id, NOW)
    async with engine.connect() as connection:
        assert await slo_rule_samples(connection, slo.project_id, spec, slo.id, NOW) == []
