"""/api/v1/channels end to end: CRUD with scopes, masked secrets, 400s naming the field,
409s for duplicate names and channels still in use, and the test notification."""

from __future__ import annotations

import json

import httpx
import pytest
from notify_kit import insert_rule, receiving

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"


@pytest.fixture
async def admin(collector, make_key, project_name):
    key = await make_key(project_name, "admin")
    async with httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        yield http


def body(**changes: object) -> dict[str, object]:
    return {"name": "oncall", "type": "slack", "url": SLACK_URL, **changes}


async def test_channels_are_created_read_replaced_and_deleted(admin, client) -> None:
    created = await admin.post(
        "/api/v1/channels", json=body(headers={"X-Token": "t0ken"}, group_wait="10s")
    )
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["url"] == "https://hooks.slack.com/***"
    assert channel["headers"] == {"X-Token": "***"}
    assert "XXXXSECRET" not in created.text and "t0ken" not in created.text
    path = f"/api/v1/channels/{channel['id']}"
    assert channel["group_wait"] == "10s" and channel["send_resolved"] is True

    # A read key sees the channel (masked) but may not change it.
    assert (await client.get("/api/v1/channels")).json()["channels"] == [channel]
    assert (await client.get(path)).json() == channel
    assert (await client.put(path, json=body())).status_code == 403

    # PUT what was read, edited: the masked secrets are kept.
    edited = {k: v for k, v in channel.items() if k not in ("id", "created_at", "updated_at")}
    edited["repeat_interval"] = "2h"
    replaced = await admin.put(path, json=edited)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["repeat_interval"] == "2h"
    assert replaced.json()["url"] == "https://hooks.slack.com/***"

    deleted = await admin.delete(path)
    assert deleted.status_code == 204
    assert (await admin.get(path)).status_code == 404
    assert (await admin.delete(path)).status_code == 404


async def test_the_stored_secrets_survive_a_masked_put(admin, db, project_name) -> None:
    created = (await admin.post("/api/v1/channels", json=body(headers={"X-A": "1"}))).json()
    path = f"/api/v1/channels/{created['id']}"
    masked = {k: created[k] for k in ("name", "type", "url", "headers")}
    assert (await admin.put(path, json=masked)).status_code == 200
    spec = json.loads(await db.fetchval("SELECT spec FROM channels WHERE id = $1", created["id"]))
    assert spec["url"] == SLACK_URL and spec["headers"] == {"X-A": "1"}
    bad = await admin.put(path, json={**masked, "headers": {"X-B": "***"}})
    assert bad.status_code == 400 and "X-B" in bad.json()["error"]["message"]


async def test_bad_bodies_get_a_400_naming_the_field(admin) -> None:
    cases = [
        (body(url="ftp://x"), "url: "),
        (body(type="pager"), "type: "),
        (body(headers={"Host": "x"}), "headers: "),
        (body(group_by="alertname"), "group_by: "),
        (body(repeat_interval="often"), "repeat_interval: "),
        ({"name": "x"}, "type: required"),
        ([1, 2], "JSON object"),
    ]
    for document, words in cases:
        answer = await admin.post("/api/v1/channels", json=document)
        assert answer.status_code == 400, (document, answer.text)
        assert words in answer.json()["error"]["message"], answer.text
    not_json = await admin.post("/api/v1/channels", content=b"{nope")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.text


async def test_scopes_and_conflicts(admin, client, db, project_name, make_key, collector) -> None:
    assert (await client.post("/api/v1/channels", json=body())).status_code == 403
    first = await admin.post("/api/v1/channels", json=body(name="team"))
    assert first.status_code == 201
    again = await admin.post("/api/v1/channels", json=body(name="team"))
    assert again.status_code == 409 and "team" in again.json()["error"]["message"]
    other = (await admin.post("/api/v1/channels", json=body(name="other"))).json()
    renamed = await admin.put(f"/api/v1/channels/{other['id']}", json=body(name="team"))
    assert renamed.status_code == 409

    channel_id = first.json()["id"]
    stranger = {"Authorization": f"Bearer {await make_key('another-project', 'admin')}"}
    async with httpx.AsyncClient(base_url=collector.url, headers=stranger) as http:
        assert (await http.get("/api/v1/channels")).json()["channels"] == []
        assert (await http.get(f"/api/v1/channels/{channel_id}")).status_code == 404
        assert (await http.delete(f"/api/v1/channels/{channel_id}")).status_code == 404
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    rule_id = await insert_rule(db, project_id, "HighErrorRate", [channel_id])
    in_use = await admin.delete(f"/api/v1/channels/{channel_id}")
    assert in_use.status_code == 409
    assert "'HighErrorRate'" in in_use.json()["error"]["message"]
    await db.execute("DELETE FROM alert_rules WHERE id = $1", rule_id)
    assert (await admin.delete(f"/api/v1/channels/{channel_id}")).status_code == 204


async def test_a_test_notification_reports_the_receivers_answer(admin) -> None:
    with receiving(200, 500) as receiver:
        created = await admin.post(
            "/api/v1/channels",
            json={"name": "hook", "type": "webhook", "url": receiver.url, "headers": {"X-A": "b"}},
        )
        path = f"/api/v1/channels/{created.json()['id']}/test"
        ok = (await admin.post(path)).json()
        assert ok["delivered"] is True and ok["status_code"] == 200 and ok["error"] is None
        [request] = receiver.requests
        payload = request.json()
        assert payload["version"] == "4" and payload["receiver"] == "hook"
        assert payload["alerts"][0]["labels"]["alertname"] == "TelemetryCollectorTest"
        assert request.headers["x-a"] == "b" and request.headers["idempotency-key"]
        failed = (await admin.post(path)).json()
        assert failed["delivered"] is False and failed["status_code"] == 500
        assert failed["error"].startswith("HTTP 500")
    assert (await admin.post("/api/v1/channels/999999/test")).status_code == 404
