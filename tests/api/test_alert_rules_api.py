"""/api/v1/alert-rules: CRUD, validation answers that name the field, scopes, project
isolation, built-in rules, and the preview of what a rule would do now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

RULE = {
    "name": "LLMErrorRate",
    "signal": "spans",
    "query": {
        "aggregation": "error_rate",
        "window": "5m",
        "filters": {"category": "llm"},
        "group_by": ["model"],
    },
    "condition": {"op": ">", "threshold": 0.05},
    "for": "2m",
    "severity": "critical",
    "labels": {"team": "assistants"},
    "annotations": {
        "summary": "{{ $labels.model }} fails {{ $value | humanizePercentage }} of calls",
        "runbook_url": "https://runbooks.example/llm-errors",
    },
}


def _rule(**overrides: object) -> dict:
    return {**RULE, "name": f"rule-{uuid.uuid4().hex[:8]}", **overrides}


async def test_create_read_replace_patch_delete(admin) -> None:
    body = _rule()
    created = await admin.post("/api/v1/alert-rules", json=body)
    assert created.status_code == 201, created.text
    rule = created.json()
    for field in ("name", "signal", "condition", "for", "severity", "labels", "annotations"):
        assert rule[field] == body[field], field
    assert rule["query"]["group_by"] == ["model"]
    assert rule["builtin"] is False and rule["enabled"] is True
    assert rule["last_evaluated_at"] is None and rule["last_error"] is None
    assert rule["created_at"].endswith("Z")

    listed = (await admin.get("/api/v1/alert-rules")).json()["rules"]
    assert rule["id"] in [item["id"] for item in listed]
    assert (await admin.get(f"/api/v1/alert-rules/{rule['id']}")).json() == rule

    replaced = await admin.put(
        f"/api/v1/alert-rules/{rule['id']}", json={**body, "for": "5m", "severity": "warning"}
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["for"], replaced.json()["severity"]) == ("5m", "warning")

    patched = await admin.patch(
        f"/api/v1/alert-rules/{rule['id']}",
        json={"enabled": False, "query": {"window": "10m"}, "labels": {"team": None}},
    )
    assert patched.status_code == 200, patched.text
    patched_rule = patched.json()
    assert patched_rule["enabled"] is False
    assert patched_rule["query"]["window"] == "10m"
    assert patched_rule["query"]["group_by"] == ["model"], "a merge patch keeps the rest"
    assert patched_rule["labels"] == {}

    assert (await admin.delete(f"/api/v1/alert-rules/{rule['id']}")).status_code == 204
    assert (await admin.get(f"/api/v1/alert-rules/{rule['id']}")).status_code == 404
    assert (await admin.delete(f"/api/v1/alert-rules/{rule['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"query": {**RULE["query"], "filters": {"servce": "x"}}}, "query.filters.servce"),
        ({"query": {**RULE["query"], "aggregation": "median"}}, "query.aggregation"),
        ({"query": {**RULE["query"], "window": "10s"}}, "query.window"),
        ({"query": {**RULE["query"], "window": "soon"}}, "query.window"),
        ({"query": {**RULE["query"], "filters": {"kind": "sideways"}}}, "query.filters.kind"),
        ({"signal": "traces"}, "signal"),
        ({"signal": "slo"}, "signal"),
        ({"condition": {"op": "=>", "threshold": 1}}, "condition.op"),
        ({"condition": None}, "condition"),
        ({"for": "a while"}, "for"),
        ({"severity": "page"}, "severity"),
        ({"labels": {"alertname": "x"}}, "labels"),
        ({"labels": {"bad name!": "x"}}, "labels"),
        ({"annotations": {"summary": "{{ $valeu }}"}}, "annotations"),
        ({"annotations": {"runbook_url": "runbooks/llm"}}, "annotations"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"channels": [987654321]}, "channels"),
    ],
)
async def test_bad_rules_answer_400_naming_the_field(admin, change: dict, field: str) -> None:
    body = {key: value for key, value in {**_rule(), **change}.items() if value is not None}
    response = await admin.post("/api/v1/alert-rules", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith(field), error["message"]


async def test_bodies_that_are_not_rules(admin) -> None:
    for content in (b"{not json", b"[1, 2]", b""):
        response = await admin.post(
            "/api/v1/alert-rules", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, content
    message = (await admin.post("/api/v1/alert-rules", json=_rule(query={}))).json()
    assert message["error"]["message"].startswith("query.aggregation: required")


async def test_duplicate_names_conflict(admin) -> None:
    body = _rule()
    assert (await admin.post("/api/v1/alert-rules", json=body)).status_code == 201
    again = await admin.post("/api/v1/alert-rules", json=body)
    assert again.status_code == 409
    assert again.json()["error"]["message"].startswith("name:")
    other = (await admin.post("/api/v1/alert-rules", json=_rule())).json()
    renamed = await admin.patch(f"/api/v1/alert-rules/{other['id']}", json={"name": body["name"]})
    assert renamed.status_code == 409


async def test_read_keys_view_but_cannot_change(admin, client) -> None:
    rule = (await admin.post("/api/v1/alert-rules", json=_rule())).json()
    assert (await client.get("/api/v1/alert-rules")).status_code == 200
    assert (await client.get(f"/api/v1/alert-rules/{rule['id']}")).status_code == 200
    path = f"/api/v1/alert-rules/{rule['id']}"
    for response in (
        await client.post("/api/v1/alert-rules", json=_rule()),
        await client.put(path, json=_rule()),
        await client.patch(path, json={"enabled": False}),
        await client.delete(path),
    ):
        assert response.status_code == 403, response.text


async def test_projects_see_only_their_rules(admin, keyed_client, make_key) -> None:
    rule = (await admin.post("/api/v1/alert-rules", json=_rule())).json()
    other_key = await make_key(f"project-{uuid.uuid4().hex[:8]}", "admin")
    async with keyed_client(other_key) as other:
        path = f"/api/v1/alert-rules/{rule['id']}"
        assert (await other.get(path)).status_code == 404
        assert (await other.put(path, json=_rule())).status_code == 404
        assert (await other.patch(path, json={"enabled": False})).status_code == 404
        assert (await other.delete(path)).status_code == 404
        ids = [item["id"] for item in (await other.get("/api/v1/alert-rules")).json()["rules"]]
        assert rule["id"] not in ids
        channel = await other.post(
            "/api/v1/alert-rules", json=_rule(channels=[rule["id"]])
        )  # an id that is not a channel of this project
        assert channel.status_code == 400
    assert (await admin.get(path)).json()["enabled"] is True


async def test_builtin_rules_are_listed_can_be_disabled_not_deleted(admin) -> None:
    rules = (await admin.get("/api/v1/alert-rules")).json()["rules"]
    builtin = {rule["name"]: rule for rule in rules if rule["builtin"]}
    assert set(builtin) == {"NewErrorGroup", "ErrorSpike5m", "ErrorSpike1h"}
    spike = builtin["ErrorSpike5m"]
    assert (spike["signal"], spike["severity"]) == ("errors", "warning")
    assert spike["query"]["group_by"] == ["fingerprint"]
    assert spike["condition"] == {"op": ">", "threshold": 10.0}

    path = f"/api/v1/alert-rules/{spike['id']}"
    refused = await admin.delete(path)
    assert refused.status_code == 409
    assert "built-in" in refused.json()["error"]["message"]
    disabled = await admin.patch(
        path, json={"enabled": False, "labels": {"team": "sre"}, "annotations": {"x": "y"}}
    )
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["enabled"] is False and disabled.json()["labels"] == {"team": "sre"}
    locked = await admin.patch(path, json={"condition": {"op": ">", "threshold": 1}})
    assert locked.status_code == 400
    assert locked.json()["error"]["message"].startswith("condition:")
    assert (await admin.patch(path, json={"enabled": True})).json()["enabled"] is True


async def test_preview_shows_each_group_and_the_condition(admin, client) -> None:
    service = f"assistant-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    logs = [
        {
            "timestamp": (now - timedelta(seconds=30 + index)).isoformat(),
            "level": level,
            "message": "tool failed",
            "service": service,
        }
        for index, level in enumerate(["error", "error", "error", "warn"])
    ]
    assert (await client.post("/api/v1/ingest/logs", json={"logs": logs})).status_code == 200
    body = {
        "signal": "logs",
        "query": {
            "aggregation": "count",
            "window": "5m",
            "filters": {"service": service},
            "group_by": ["level"],
        },
        "condition": {"op": ">=", "threshold": 2},
        "annotations": {"summary": "{{ $value }} {{ $labels.level }} logs"},
    }
    response = await client.post("/api/v1/alert-rules/preview", json=body)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert [
        (g["labels"]["level"], g["value"], g["condition_holds"], g["state"])
        for g in preview["groups"]
    ] == [("error", 3, True, "firing"), ("warn", 1, False, "inactive")]
    assert preview["groups"][0]["labels"]["alertname"] == "preview"
    assert preview["groups"][0]["annotations"] == {"summary": "3 error logs"}
    names = [rule["name"] for rule in (await admin.get("/api/v1/alert-rules")).json()["rules"]]
    assert "preview" not in names, "a preview stores nothing"
    bad = await client.post(
        "/api/v1/alert-rules/preview", json={**body, "query": {"aggregation": "p95"}}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("query.aggregation")
