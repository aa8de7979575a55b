"""/api/v1/alerts: instances made by evaluation, filtered by state and rule, silenced while
a matching silence is active; disabling or deleting a rule resolves its alerts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from app.config import Settings
from app.workers.alert_eval import evaluate_round

SETTINGS = Settings(alert_eval_interval="1s")


async def _firing_rule(admin: httpx.AsyncClient) -> tuple[dict, str]:
    service = f"assistant-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    logs = [
        {
            "timestamp": (now - timedelta(seconds=20)).isoformat(),
            "level": "error",
            "message": "tool failed",
            "service": service,
        }
    ]
    assert (await admin.post("/api/v1/ingest/logs", json={"logs": logs})).status_code == 200
    rule = await admin.post(
        "/api/v1/alert-rules",
        json={
            "name": f"ToolFailing-{service}",
            "signal": "logs",
            "query": {"aggregation": "count", "window": "5m", "filters": {"service": service}},
            "condition": {"op": ">", "threshold": 0},
            "for": "0s",
            "labels": {"team": "assistants"},
        },
    )
    assert rule.status_code == 201, rule.text
    return rule.json(), service


async def _alerts(http: httpx.AsyncClient, **params: object) -> list[dict]:
    response = await http.get("/api/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


async def _evaluate_until(engine, db, http, rule_id: int, state: str) -> dict:
    """Run rounds of this project until the rule has an alert in `state` (the shared
    collector may evaluate it first: either way the alert appears)."""
    project_id = await db.fetchval("SELECT project_id FROM alert_rules WHERE id = $1", rule_id)
    for _ in range(40):
        await evaluate_round(engine, SETTINGS, project_ids=[project_id])
        found = await _alerts(http, rule_id=rule_id, state=state)
        if found:
            return found[0]
        await asyncio.sleep(0.25)
    raise AssertionError(f"rule {rule_id} has no {state} alert")


async def test_alerts_are_listed_and_silenced_while_a_silence_is_active(
    admin, client, engine, db
) -> None:
    rule, _ = await _firing_rule(admin)
    alert = await _evaluate_until(engine, db, client, rule["id"], "firing")
    assert alert["rule_id"] == rule["id"] and alert["rule_name"] == rule["name"]
    assert alert["labels"] == {
        "alertname": rule["name"],
        "severity": "warning",
        "team": "assistants",
    }
    assert (alert["value"], alert["silenced"], alert["silenced_by"]) == (1, False, [])
    assert alert["fired_at"] and alert["resolved_at"] is None
    assert (await client.get(f"/api/v1/alerts/{alert['id']}")).json() == alert
    assert await _alerts(client, rule_id=rule["id"], state="pending") == []
    assert (await client.get("/api/v1/alerts", params={"state": "burning"})).status_code == 400

    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    other_team = await admin.post(
        "/api/v1/silences",
        json={"matchers": [{"name": "team", "value": "billing"}], "ends_at": ends},
    )
    assert other_team.status_code == 201
    silence = (
        await admin.post(
            "/api/v1/silences",
            json={
                "matchers": [
                    {"name": "alertname", "value": "ToolFailing-.*", "is_regex": True},
                    {"name": "severity", "value": "critical", "is_equal": False},
                ],
                "ends_at": ends,
            },
        )
    ).json()
    muted = await _alerts(client, rule_id=rule["id"])
    assert [(a["silenced"], a["silenced_by"]) for a in muted] == [(True, [silence["id"]])]
    assert (await client.get(f"/api/v1/alerts/{alert['id']}")).json()["silenced"] is True

    assert (await admin.delete(f"/api/v1/silences/{silence['id']}")).status_code == 200
    assert [a["silenced"] for a in await _alerts(client, rule_id=rule["id"])] == [False]


async def test_disabling_or_deleting_a_rule_resolves_its_alerts(admin, engine, db) -> None:
    rule, _ = await _firing_rule(admin)
    first = await _evaluate_until(engine, db, admin, rule["id"], "firing")
    path = f"/api/v1/alert-rules/{rule['id']}"
    assert (await admin.patch(path, json={"enabled": False})).status_code == 200
    [resolved] = await _alerts(admin, rule_id=rule["id"])
    assert (resolved["id"], resolved["state"]) == (first["id"], "resolved")
    assert resolved["resolved_at"] is not None

    assert (await admin.patch(path, json={"enabled": True})).status_code == 200
    second = await _evaluate_until(engine, db, admin, rule["id"], "firing")
    assert second["id"] != first["id"], "a resolved alert that fires again is a new instance"
    assert (await admin.delete(path)).status_code == 204
    after = {a["id"]: a for a in await _alerts(admin, state="resolved")}
    assert after[second["id"]]["rule_id"] is None, "kept listed after its rule is gone"
    assert after[second["id"]]["rule_name"] == rule["name"]


async def test_alerts_of_other_projects_are_not_found(
    admin, engine, db, keyed_client, make_key
) -> None:
    rule, _ = await _firing_rule(admin)
    alert = await _evaluate_until(engine, db, admin, rule["id"], "firing")
    async with keyed_client(await make_key(f"p-{uuid.uuid4().hex[:8]}", "read")) as other:
        assert (await other.get(f"/api/v1/alerts/{alert['id']}")).status_code == 404
        assert await _alerts(other, rule_id=rule["id"]) == []
