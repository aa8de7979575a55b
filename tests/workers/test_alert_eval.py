"""The alert evaluation round, driven with an explicit `now` on a database of its own:
the state machine over real queries, failures that stay with their rule, restarts, and
concurrent evaluators. Then end to end: built-in rules fire on errors sent through ingest.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import create_key
from app.config import Settings
from app.db.engine import create_engine
from app.store.alert_rules import create_rule
from app.workers.alert_eval import RoundReport, evaluate_round

SETTINGS = Settings(alert_eval_interval="30s", alert_query_timeout="5s")
# Data is stamped here; rounds run at BASE + offsets (all in the past: `now` is explicit).
BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


class Project:
    def __init__(self, project_id: int, key: str, collector: Collector) -> None:
        self.id = project_id
        self.service = f"assistant-{uuid.uuid4().hex[:8]}"
        self.http = httpx.Client(
            base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def logs(self, *moments: datetime, level: str = "error") -> None:
        items = [
            {
                "timestamp": moment.isoformat(),
                "level": level,
                "message": "tool failed",
                "service": self.service,
            }
            for moment in moments
        ]
        response = self.http.post("/api/v1/ingest/logs", json={"logs": items})
        assert response.status_code == 200 and response.json()["rejected"] == [], response.text

    def errors(self, count: int, moment: datetime, marker: str) -> None:
        items = [
            {
                "type": "ToolTimeout",
                "message": f"tool {marker} timed out",
                "service": self.service,
                "timestamp": (moment + timedelta(milliseconds=index)).isoformat(),
                "fingerprint": [marker],
            }
            for index in range(count)
        ]
        response = self.http.post("/api/v1/ingest/errors", json={"errors": items})
        assert response.status_code == 200 and response.json()["rejected"] == [], response.text


@pytest.fixture
async def project(alerting_engine: AsyncEngine, ingest_collector: Collector) -> Project:
    created = await create_key(
        alerting_engine, f"project-{uuid.uuid4().hex[:8]}", ["ingest", "read", "admin"]
    )
    return Project(created.project_id, created.key, ingest_collector)


async def log_rule(engine: AsyncEngine, project: Project, **overrides: object) -> int:
    body = {
        "name": f"ToolErrors-{uuid.uuid4().hex[:6]}",
        "signal": "logs",
        "query": {"aggregation": "count", "window": "5m", "filters": {"service": project.service}},
        "condition": {"op": ">", "threshold": 0},
        "for": "1m",
        "annotations": {"summary": "{{ $value }} tool errors"},
        **overrides,
    }
    return (await create_rule(engine, project.id, body))["id"]


async def round_at(
    engine: AsyncEngine, project: Project, offset_s: float, settings: Settings = SETTINGS
) -> RoundReport:
    return await evaluate_round(
        engine, settings, BASE + timedelta(seconds=offset_s), project_ids=[project.id]
    )


async def alerts_of(db, rule_id: int) -> list:
    return await db.fetch("SELECT * FROM alerts WHERE rule_id = $1 ORDER BY id", rule_id)


def at(offset_s: float) -> datetime:
    return BASE + timedelta(seconds=offset_s)


async def test_pending_then_firing_after_for_then_resolved(
    alerting_engine, alerting_db, project
) -> None:
    project.logs(at(0), at(1))
    rule_id = await log_rule(alerting_engine, project)

    report = await round_at(alerting_engine, project, 10)
    assert report.events == {"pending": 1} and report.failed == 0
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["active_at"], alert["value"]) == ("pending", at(10), 2.0)
    assert alert["annotations"] == {"summary": "2 tool errors"}
    assert alert["labels"]["alertname"].startswith("ToolErrors-")
    assert alert["labels"]["severity"] == "warning"

    assert (await round_at(alerting_engine, project, 40)).events == {}  # 30s < for: 1m
    assert (await alerts_of(alerting_db, rule_id))[0]["state"] == "pending"

    await round_at(alerting_engine, project, 70)
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["active_at"], alert["fired_at"]) == ("firing", at(10), at(70))

    report = await round_at(alerting_engine, project, 400)  # the logs left the 5m window
    assert report.events == {"resolved": 1}
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["resolved_at"], alert["value"]) == ("resolved", at(400), 2.0)

    rule = await alerting_db.fetchrow("SELECT * FROM alert_rules WHERE id = $1", rule_id)
    assert rule["last_evaluated_at"] == at(400)
    assert rule["last_error"] is None and rule["last_duration_ms"] >= 0


async def test_pending_is_dropped_when_the_condition_clears(
    alerting_engine, alerting_db, project
) -> None:
    project.logs(at(0))
    rule_id = await log_rule(alerting_engine, project, **{"for": "10m"})
    await round_at(alerting_engine, project, 10)
    assert [a["state"] for a in await alerts_of(alerting_db, rule_id)] == ["pending"]
    report = await round_at(alerting_engine, project, 320)
    assert report.events == {"dropped": 1}
    assert await alerts_of(alerting_db, rule_id) == []  # no resolved row: nothing to notify


async def test_keep_firing_for_holds_then_resolves(alerting_engine, alerting_db, project) -> None:
    project.logs(at(0))
    rule_id = await log_rule(alerting_engine, project, **{"for": "0s", "keep_firing_for": "2m"})
    assert (await round_at(alerting_engine, project, 10)).events == {"firing": 1}
    await round_at(alerting_engine, project, 310)  # condition false: held
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["keep_firing_since"]) == ("firing", at(310))

    project.logs(at(330))  # back before the hold ran out: the hold is cleared
    await round_at(alerting_engine, project, 340)
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["keep_firing_since"], alert["value"]) == ("firing", None, 1.0)

    await round_at(alerting_engine, project, 640)  # clear from here
    await round_at(alerting_engine, project, 700)
    assert (await alerts_of(alerting_db, rule_id))[0]["state"] == "firing"
    await round_at(alerting_engine, project, 760)
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["resolved_at"]) == ("resolved", at(760))


async def test_late_evaluation_and_for_zero(alerting_engine, alerting_db, project) -> None:
    project.logs(at(0))
    waiting = await log_rule(alerting_engine, project)
    at_once = await log_rule(alerting_engine, project, **{"for": "0s"})
    await round_at(alerting_engine, project, 5)
    [immediate] = await alerts_of(alerting_db, at_once)
    assert (immediate["state"], immediate["fired_at"]) == ("firing", at(5))
    # The next round comes 4 minutes late: the pending alert fires as soon as it runs.
    await round_at(alerting_engine, project, 245)
    [late] = await alerts_of(alerting_db, waiting)
    assert (late["state"], late["active_at"], late["fired_at"]) == ("firing", at(5), at(245))
    assert [a["id"] for a in await alerts_of(alerting_db, at_once)] == [immediate["id"]]


async def test_clock_jumping_back_keeps_waiting(alerting_engine, alerting_db, project) -> None:
    project.logs(at(0))
    rule_id = await log_rule(alerting_engine, project)
    await round_at(alerting_engine, project, 120)
    report = await round_at(alerting_engine, project, 30)  # the clock went back 90s
    assert report.evaluated > 0, "a rule evaluated 'in the future' is due, not stuck"
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["active_at"]) == ("pending", at(120))
    await round_at(alerting_engine, project, 185)
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["fired_at"]) == ("firing", at(185))


async def test_a_failing_rule_is_recorded_and_the_others_evaluate(
    alerting_engine, alerting_db, project
) -> None:
    project.errors(1, at(0), f"new-{uuid.uuid4().hex}")
    project.logs(at(0))
    await alerting_db.execute(
        "UPDATE alert_rules SET enabled = false WHERE project_id = $1 AND builtin IS NOT NULL",
        project.id,
    )
    slow = (
        await create_rule(
            alerting_engine,
            project.id,
            {
                "name": "NewGroups",
                "signal": "errors",
                "query": {"aggregation": "new_groups", "window": "10m"},
                "condition": {"op": ">", "threshold": 0},
            },
        )
    )["id"]
    broken = await log_rule(alerting_engine, project)
    healthy = await log_rule(alerting_engine, project, **{"for": "0s"})
    await round_at(alerting_engine, project, 5)
    [before] = await alerts_of(alerting_db, slow)
    assert before["state"] == "firing"
    await alerting_db.execute("UPDATE alert_rules SET spec = '{\"name\": 5}' WHERE id = $1", broken)
    await alerting_db.execute("DELETE FROM alerts WHERE rule_id = $1", healthy)

    settings = Settings(alert_eval_interval="30s", alert_query_timeout="1s")
    async with alerting_db.transaction():
        # The new-groups query waits for this lock until its statement timeout.
        await alerting_db.execute("LOCK TABLE error_groups IN ACCESS EXCLUSIVE MODE")
        report = await round_at(alerting_engine, project, 65, settings)
    try:
        assert report.evaluated == 3 and report.failed == 2 and report.timed_out == 1
        rules = {
            row["id"]: row
            for row in await alerting_db.fetch(
                "SELECT * FROM alert_rules WHERE id = ANY($1)", [slow, broken, healthy]
            )
        }
        assert "alert_query_timeout" in rules[slow]["last_error"]
        assert rules[broken]["last_error"].startswith("the stored rule is invalid: name:")
        assert rules[healthy]["last_error"] is None
        assert all(rule["last_evaluated_at"] == at(65) for rule in rules.values())
        [after] = await alerts_of(alerting_db, slow)
        assert dict(after) == dict(before), "a failed rule leaves its alerts as they were"
        assert [a["state"] for a in await alerts_of(alerting_db, healthy)] == ["firing"]
    finally:
        await alerting_db.execute(
            "UPDATE alert_rules SET enabled = false WHERE id = ANY($1)", [slow, broken]
        )


async def test_state_survives_a_restart(alerting_url, alerting_db, project) -> None:
    project.logs(at(0), at(100))

    async def fresh_process_round(offset_s: float) -> RoundReport:
        engine = create_engine(Settings(database_url=alerting_url), alerting_url, pool_size=2)
        try:
            return await round_at(engine, project, offset_s)
        finally:
            await engine.dispose()

    engine = create_engine(Settings(database_url=alerting_url), alerting_url, pool_size=2)
    rule_id = await log_rule(engine, project)
    await engine.dispose()
    await fresh_process_round(10)
    await fresh_process_round(75)  # the pending timer came from the database
    [alert] = await alerts_of(alerting_db, rule_id)
    assert (alert["state"], alert["active_at"], alert["fired_at"]) == ("firing", at(10), at(75))
    report = await fresh_process_round(110)
    assert report.events == {}, "a firing alert is not re-created after a restart"
    assert [a["id"] for a in await alerts_of(alerting_db, rule_id)] == [alert["id"]]


async def test_concurrent_rounds_evaluate_each_rule_once(
    alerting_url, alerting_db, project
) -> None:
    project.logs(at(0))
    engines = [
        create_engine(Settings(database_url=alerting_url), alerting_url, pool_size=3)
        for _ in range(2)
    ]
    try:
        for _ in range(10):
            await log_rule(engines[0], project, **{"for": "0s"})
        rules = await alerting_db.fetchval(
            "SELECT count(*) FROM alert_rules WHERE project_id = $1 AND enabled", project.id
        )
        reports = await asyncio.gather(*(round_at(engine, project, 10) for engine in engines))
        assert sum(report.evaluated for report in reports) == rules
        assert sum(report.events.get("firing", 0) for report in reports) == 10
        again = await asyncio.gather(*(round_at(engine, project, 20) for engine in engines))
        assert sum(report.evaluated for report in again) == 0, "not due again within 0.8 interval"
    finally:
        for engine in engines:
            await engine.dispose()
    live = await alerting_db.fetchval(
        "SELECT count(*) FROM alerts WHERE project_id = $1 AND state = 'firing'", project.id
    )
    assert live == 10


async def _metrics(collector: Collector) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(f"{collector.url}/metrics")).text


async def _evaluations(collector: Collector) -> float:
    text = await _metrics(collector)
    found = re.findall(r"^telemetry_alert_rule_evaluations_total\{[^}]*\} (\S+)$", text, re.M)
    return sum(float(value) for value in found)


async def test_two_collectors_evaluate_each_rule_once_per_interval(
    start_collector, alerting_url, alerting_db, alerting_engine, project
) -> None:
    for _ in range(5):
        await log_rule(alerting_engine, project)
    env = {"TELEMETRY_ALERT_EVAL_INTERVAL": "2s"}
    collectors = [start_collector(env, database_url=alerting_url) for _ in range(2)]
    rules = await alerting_db.fetchval("SELECT count(*) FROM alert_rules WHERE enabled")
    first = [await _evaluations(collector) for collector in collectors]
    started = time.monotonic()
    await asyncio.sleep(8)
    counts = [await _evaluations(collector) for collector in collectors]
    elapsed = time.monotonic() - started
    done = sum(counts) - sum(first)
    # Once per rule and interval, whichever process runs the round: about rules * 4 here,
    # at most one per 0.8 interval and rule plus the round in flight; both processes
    # evaluating every rule would make about rules * 8.
    assert done <= rules * (elapsed / (0.8 * 2) + 1)
    assert done >= rules, "the rules were evaluated"
    exposed = await _metrics(collectors[0])
    for series in (
        'telemetry_alerts{state="firing"}',
        "telemetry_alert_rules_evaluated",
        "telemetry_alert_evaluation_round_duration_seconds_bucket",
        "telemetry_alert_rule_evaluation_duration_seconds_bucket",
        'telemetry_worker_runs_total{job="alert-evaluation"',
    ):
        assert series in exposed, series


async def test_builtin_rules_fire_on_an_error_spike_sent_through_ingest(
    start_collector, alerting_url, alerting_engine, project
) -> None:
    collector = start_collector(
        {"TELEMETRY_ALERT_EVAL_INTERVAL": "1s", "TELEMETRY_EXTERNAL_URL": "http://tc.example"},
        database_url=alerting_url,
    )
    admin = await create_key(alerting_engine, f"spiky-{uuid.uuid4().hex[:6]}", ["admin"])
    spiky = Project(admin.project_id, admin.key, collector)
    marker = uuid.uuid4().hex
    spiky.errors(12, datetime.now(UTC) - timedelta(seconds=30), marker)
    fingerprint = spiky.http.get("/api/v1/errors").json()["errors"][0]["fingerprint"]

    deadline = time.monotonic() + 30
    firing: dict[str, dict] = {}
    while time.monotonic() < deadline and {"NewErrorGroup", "ErrorSpike5m"} - firing.keys():
        await asyncio.sleep(0.5)
        alerts = spiky.http.get("/api/v1/alerts", params={"state": "firing"}).json()["alerts"]
        firing = {alert["labels"]["alertname"]: alert for alert in alerts}
    assert {"NewErrorGroup", "ErrorSpike5m"} <= firing.keys(), firing
    assert "ErrorSpike1h" not in firing  # 12 events: not more than 50
    spike = firing["ErrorSpike5m"]
    assert spike["labels"] == {
        "alertname": "ErrorSpike5m",
        "severity": "warning",
        "fingerprint": fingerprint,
        "service": spiky.service,
        "type": "ToolTimeout",
    }
    assert spike["value"] == 12
    assert spike["annotations"]["summary"] == (
        f"ToolTimeout in {spiky.service}: 12 events in the last 5 minutes"
    )
    assert spike["annotations"]["link"] == f"http://tc.example/api/v1/errors/{fingerprint}"
    assert spike["annotations"]["message"] == "tool <hex> timed out"  # normalized
    new_group = firing["NewErrorGroup"]
    assert new_group["labels"]["severity"] == "info"
    assert new_group["annotations"]["summary"] == f"New error in {spiky.service}: ToolTimeout"
