"""/api/v1/silences: create, list by state, expire (as Alertmanager), validation, scopes,
project isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest


def _later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def _silence(**overrides: object) -> dict:
    return {
        "matchers": [{"name": "alertname", "value": "ErrorSpike5m"}],
        "ends_at": _later(hours=2),
        "comment": "deploying the fix",
        "created_by": "ana",
        **overrides,
    }


async def test_create_list_and_expire(admin) -> None:
    created = await admin.post("/api/v1/silences", json=_silence())
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["state"] == "active"
    assert silence["matchers"] == [
        {"name": "alertname", "value": "ErrorSpike5m", "is_regex": False, "is_equal": True}
    ]
    assert (silence["comment"], silence["created_by"]) == ("deploying the fix", "ana")
    assert silence["starts_at"] < silence["ends_at"], "starts now when not given"

    later = (
        await admin.post(
            "/api/v1/silences",
            json=_silence(starts_at=_later(hours=1), name=f"maintenance-{uuid.uuid4().hex[:6]}"),
        )
    ).json()
    assert later["state"] == "pending"

    def ids(answer: httpx.Response) -> list[int]:
        return [item["id"] for item in answer.json()["silences"]]

    listed = await admin.get("/api/v1/silences")
    assert ids(listed)[:2] == [silence["id"], later["id"]], "active first, then pending"
    assert later["id"] in ids(await admin.get("/api/v1/silences", params={"state": "pending"}))
    assert later["id"] not in ids(await admin.get("/api/v1/silences", params={"state": "active"}))
    assert (await admin.get("/api/v1/silences", params={"state": "asleep"})).status_code == 400

    expired = (await admin.delete(f"/api/v1/silences/{silence['id']}")).json()
    assert expired["state"] == "expired" and expired["ends_at"] < silence["ends_at"]
    again = await admin.delete(f"/api/v1/silences/{silence['id']}")
    assert again.status_code == 200 and again.json()["ends_at"] == expired["ends_at"]
    never_started = (await admin.delete(f"/api/v1/silences/{later['id']}")).json()
    assert never_started["state"] == "expired"
    assert never_started["starts_at"] == never_started["ends_at"]
    assert silence["id"] in ids(await admin.get("/api/v1/silences", params={"state": "expired"}))
    assert (await admin.get(f"/api/v1/silences/{silence['id']}")).json()["state"] == "expired"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"matchers": []}, "matchers"),
        ({"matchers": [{"name": "team", "value": ".*", "is_regex": True}]}, "matchers"),
        ({"matchers": [{"name": "team", "value": "(", "is_regex": True}]}, "matchers.0"),
        ({"matchers": [{"name": "", "value": "x"}]}, "matchers.0.name"),
        ({"ends_at": _later(hours=-1)}, "ends_at"),
        ({"ends_at": "tomorrow-ish"}, "ends_at"),
        ({"starts_at": _later(hours=3)}, "ends_at"),
        ({"ends_at": None}, "ends_at"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_silences_answer_400_naming_the_field(admin, change: dict, field: str) -> None:
    body = {key: value for key, value in {**_silence(), **change}.items() if value is not None}
    response = await admin.post("/api/v1/silences", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith(field), response.text


async def test_names_are_unique_per_project(admin) -> None:
    name = f"freeze-{uuid.uuid4().hex[:6]}"
    assert (await admin.post("/api/v1/silences", json=_silence(name=name))).status_code == 201
    again = await admin.post("/api/v1/silences", json=_silence(name=name))
    assert again.status_code == 409 and again.json()["error"]["message"].startswith("name:")


async def test_scopes_and_projects(admin, client, keyed_client, make_key) -> None:
    silence = (await admin.post("/api/v1/silences", json=_silence())).json()
    path = f"/api/v1/silences/{silence['id']}"
    assert (await client.get(path)).status_code == 200
    assert (await client.post("/api/v1/silences", json=_silence())).status_code == 403
    assert (await client.delete(path)).status_code == 403
    async with keyed_client(await make_key(f"p-{uuid.uuid4().hex[:8]}", "admin")) as other:
        assert (await other.get(path)).status_code == 404
        assert (await other.delete(path)).status_code == 404
        assert silence["id"] not in [
            s["id"] for s in (await other.get("/api/v1/silences")).json()["silences"]
        ]
    assert (await admin.get(path)).json()["state"] == "active"
