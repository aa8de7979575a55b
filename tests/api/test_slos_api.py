"""/api/v1/slos over HTTP: CRUD with the owned alert rules, errors naming the field,
project isolation, history, and the deploy gate (409 while frozen, 200 once recovered)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from query.query_kit import send_spans
from slo_kit import (
    count_round,
    fill_minutes,
    minute_ago,
    minute_rows,
    new_project,
    request_spans,
    slo_body,
)
from sqlalchemy import insert, select

from app.db.tables import alert_rules, alerts, channels, slos


async def _rules(engine, slo_id: int) -> dict[str, dict]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(alert_rules).where(alert_rules.c.slo_id == slo_id).order_by(alert_rules.c.id)
        )
        return {row.builtin: row._asdict() for row in rows}


async def _firing_alert(engine, project_id: int, rule_id: int) -> int:
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        return await connection.scalar(
            insert(alerts)
            .values(
                project_id=project_id,
                rule_id=rule_id,
                rule_name="SLOBurnRate:x",
                fingerprint=f"{rule_id:016x}",
                labels={"alertname": "SLOBurnRate"},
                annotations={},
                state="firing",
                value=20.0,
                active_at=now,
                fired_at=now,
                last_evaluated_at=now,
            )
            .returning(alerts.c.id)
        )


async def _alert(engine, alert_id: int) -> dict:
    async with engine.connect() as connection:
        row = (await connection.execute(select(alerts).where(alerts.c.id == alert_id))).one()
        return row._asdict()


async def test_create_read_update_and_the_owned_rules(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with engine.begin() as connection:
        channel = await connection.scalar(
            insert(channels)
            .values(project_id=project.id, name="pager", type="webhook", spec={})
            .returning(channels.c.id)
        )
    async with project.client() as client:
        body = slo_body(name="chat", alerting={"channels": [channel]}, description="turns")
        response = await client.post("/api/v1/slos", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["name"] == "chat" and created["objective"] == 99.9
        assert created["policy"] == {"warn_below": 0.25}
        assert created["alerting"] == {"min_events": 100, "channels": [channel], "enabled": True}
        assert created["counting"]["counted_until"] is None

        rules = await _rules(engine, created["id"])
        assert set(rules) == {"slo_burn_rate", "slo_budget_policy"}
        assert rules["slo_burn_rate"]["name"] == "SLOBurnRate:chat"
        assert rules["slo_budget_policy"]["name"] == "SLOBudgetPolicy:chat"
        for rule in rules.values():
            assert (rule["signal"], rule["enabled"], rule["project_id"]) == (
                "slo",
                True,
                project.id,
            )
            assert rule["spec"]["channels"] == [channel]
            assert rule["spec"]["query"]["filters"] == {"slo_id": created["id"]}

        assert (await client.get(f"/api/v1/slos/{created['id']}")).json() == created
        listed = (await client.get("/api/v1/slos")).json()["slos"]
        assert [item["id"] for item in listed] == [created["id"]]
        assert (await client.get("/api/v1/slos", params={"service": "other"})).json() == {
            "slos": []
        }

        renamed = {**body, "name": "chat turns", "objective": 99.5}
        response = await client.put(f"/api/v1/slos/{created['id']}", json=renamed)
        assert response.status_code == 200, response.text
        assert (response.json()["name"], response.json()["objective"]) == ("chat turns", 99.5)
        rules = await _rules(engine, created["id"])
        assert rules["slo_burn_rate"]["name"] == "SLOBurnRate:chat turns"

        # Its rules follow the SLO: the rules API points there instead of changing them.
        rule_id = rules["slo_burn_rate"]["id"]
        patched = await client.patch(f"/api/v1/alert-rules/{rule_id}", json={"enabled": False})
        assert patched.status_code == 409 and f"PUT /api/v1/slos/{created['id']}" in patched.text
        assert (await client.delete(f"/api/v1/alert-rules/{rule_id}")).status_code == 409

        duplicate = await client.post("/api/v1/slos", json=renamed)
        assert duplicate.status_code == 409
        assert "name: an SLO named 'chat turns' already exists" in duplicate.text
        other = (await client.post("/api/v1/slos", json=slo_body(name="other"))).json()
        clash = await client.put(f"/api/v1/slos/{other['id']}", json=renamed)
        assert clash.status_code == 409


async def test_bad_bodies_name_the_field(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        cases = {
            "objective: must be above 0 and below 100": slo_body(objective=100),
            "sli.threshold_ms: required": slo_body(sli={"type": "latency"}),
            "window: must be from 1d to 90d": slo_body(window="1h"),
            "alerting.channels: no channel 987654321 in this project": slo_body(
                alerting={"channels": [987654321]}
            ),
            "body must be a JSON object": [1, 2],
        }
        for message, body in cases.items():
            response = await client.post("/api/v1/slos", json=body)
            assert response.status_code == 400, response.text
            assert message in response.json()["error"]["message"]
        response = await client.post("/api/v1/slos", content=b"{not json")
        assert response.status_code == 400
        assert "body: not valid JSON" in response.text
        # A user rule already holds the name one of the SLO's rules would take.
        async with engine.begin() as connection:
            await connection.execute(
                insert(alert_rules).values(
                    project_id=project.id, name="SLOBurnRate:taken", signal="spans", spec={}
                )
            )
        response = await client.post("/api/v1/slos", json=slo_body(name="taken"))
        assert response.status_code == 409
        assert "an alert rule named 'SLOBurnRate:taken' already exists" in response.text
        assert (await client.get("/api/v1/slos")).json()["slos"] == []  # nothing half-made


async def test_scopes_and_other_projects(engine, collector) -> None:
    owner = await new_project(engine, collector)
    stranger = await new_project(engine, collector)
    async with owner.client() as client:
        slo = (await client.post("/api/v1/slos", json=slo_body())).json()
    async with stranger.client() as client:
        for method, path in [
            ("GET", f"/api/v1/slos/{slo['id']}"),
            ("PUT", f"/api/v1/slos/{slo['id']}"),
            ("DELETE", f"/api/v1/slos/{slo['id']}"),
            ("GET", f"/api/v1/slos/{slo['id']}/status"),
            ("GET", f"/api/v1/slos/{slo['id']}/history"),
            ("GET", "/api/v1/slos/not-a-number"),
        ]:
            response = await client.request(method, path, json=slo_body())
            assert response.status_code == 404, (method, path, response.text)
        assert (await client.get("/api/v1/slos")).json() == {"slos": []}
    reader = await new_project(engine, collector, "read")
    async with reader.client() as client:
        assert (await client.get("/api/v1/slos")).status_code == 200
        assert (await client.post("/api/v1/slos", json=slo_body())).status_code == 403


async def test_changing_what_counts_voids_the_counts(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        body = slo_body(service="void")
        slo = (await client.post("/api/v1/slos", json=body)).json()
        minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
        await fill_minutes(engine, slo["id"], minute, minute + timedelta(minutes=3), 9, 10)
        await client.put(f"/api/v1/slos/{slo['id']}", json={**body, "objective": 99.0})
        assert len(await minute_rows(engine, slo["id"])) == 3  # same events: counts kept
        latency = {**body, "sli": {"type": "latency", "threshold_ms": 800}}
        changed = (await client.put(f"/api/v1/slos/{slo['id']}", json=latency)).json()
        assert await minute_rows(engine, slo["id"]) == {}
        assert changed["counting"]["counted_from"] is None


async def test_disabling_and_deleting_resolve_live_alerts(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        body = slo_body()
        slo = (await client.post("/api/v1/slos", json=body)).json()
        rules = await _rules(engine, slo["id"])
        alert = await _firing_alert(engine, project.id, rules["slo_burn_rate"]["id"])
        off = {**body, "alerting": {"enabled": False}}
        assert (await client.put(f"/api/v1/slos/{slo['id']}", json=off)).status_code == 200
        assert {rule["enabled"] for rule in (await _rules(engine, slo["id"])).values()} == {False}
        resolved = await _alert(engine, alert)
        assert resolved["state"] == "resolved" and resolved["resolved_at"] is not None

        await client.put(f"/api/v1/slos/{slo['id']}", json=body)
        alert = await _firing_alert(engine, project.id, rules["slo_budget_policy"]["id"])
        response = await client.delete(f"/api/v1/slos/{slo['id']}")
        assert response.status_code == 204
        assert (await client.get(f"/api/v1/slos/{slo['id']}")).status_code == 404
        assert await _rules(engine, slo["id"]) == {}
        gone = await _alert(engine, alert)
        assert (gone["state"], gone["rule_id"]) == ("resolved", None)
        async with engine.connect() as connection:
            assert await connection.scalar(select(slos.c.id).where(slos.c.id == slo["id"])) is None


async def test_history_points_over_explicit_times(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        slo = (await client.post("/api/v1/slos", json=slo_body(window="1d"))).json()
        end = datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC)
        data_end = datetime(2026, 11, 20, 12, 1, tzinfo=UTC)  # the end of end's minute
        # 100 events a minute for two days; the last 6 hours with 1 bad a minute.
        await fill_minutes(engine, slo["id"], data_end - timedelta(days=2), data_end, 100, 100)
        bad_from = data_end - timedelta(hours=6)
        await fill_minutes(engine, slo["id"], bad_from, data_end, 99, 100)
        response = await client.get(
            f"/api/v1/slos/{slo['id']}/history",
            params={"start": "2026-11-20T00:00:00Z", "end": end.isoformat(), "step": "3h"},
        )
        assert response.status_code == 200, response.text
        answer = response.json()
    assert answer["step"] == "180m"
    points = answer["points"]
    # The last point ends with the minute `end` falls in; then every 3 hours back.
    assert [point["time"] for point in points] == [
        "2026-11-20T00:01:00Z",
        "2026-11-20T03:01:00Z",
        "2026-11-20T06:01:00Z",
        "2026-11-20T09:01:00Z",
        "2026-11-20T12:01:00Z",
    ]
    # Until 06:01 every minute was good; the last point's day holds 360 bad minutes
    # (06:01..12:00) among 1,440 x 100 events, against 144 bad allowed (99.9%).
    assert [point["burn_rate"] for point in points] == [0.0, 0.0, 0.0, 10.0, 10.0]
    assert points[0]["sli"] == 1.0 and points[0]["budget_remaining_ratio"] == 1.0
    assert points[-1]["sli"] == (144_000 - 360) / 144_000
    assert points[-1]["budget_remaining_ratio"] == 1 - 360 / 144


async def test_the_deploy_gate(engine, collector) -> None:
    project = await new_project(engine, collector)
    async with project.client() as client:
        assert (await client.get("/api/v1/slos/gate")).status_code == 400
        empty = await client.get("/api/v1/slos/gate", params={"service": "gated"})
        assert (empty.status_code, empty.json()["allowed"], empty.json()["slos"]) == (
            200,
            True,
            [],
        )
        strict = (
            await client.post("/api/v1/slos", json=slo_body(service="gated", objective=99))
        ).json()
        loose = (
            await client.post("/api/v1/slos", json=slo_body(service="gated", objective=75))
        ).json()
        # 10 requests, 2 failed: 20x a 1% budget (frozen), 0.8x a 25% one (warn, 20% left).
        spans = request_spans("gated", minute_ago(2), [10.0] * 10, errors={0, 1})
        await send_spans(client, spans, "native")
        await count_round(engine, datetime.now(UTC), [strict["id"], loose["id"]])
        frozen = await client.get("/api/v1/slos/gate", params={"service": "gated"})
        assert frozen.status_code == 409, frozen.text
        assert frozen.json()["allowed"] is False
        assert frozen.json()["slos"] == [
            {
                "id": strict["id"],
                "name": strict["name"],
                "policy": "freeze",
                "remaining_ratio": -19.0,
                "no_data": False,
            }
        ]
        # 990 good requests later, 2 bad of 1,000 is 0.2% against 1%: 80% left.
        spans = request_spans(
            "gated", minute_ago(1), [10.0] * 990, every=timedelta(milliseconds=50)
        )
        await send_spans(client, spans, "native")
        await count_round(engine, datetime.now(UTC), [strict["id"], loose["id"]])
        recovered = await client.get("/api/v1/slos/gate", params={"service": "gated"})
        assert recovered.status_code == 200, recovered.text
        assert recovered.json()["allowed"] is True
        assert {item["name"]: item["remaining_ratio"] for item in recovered.json()["slos"]} == {
            strict["name"]: 0.8,
            loose["name"]: 0.992,
        }
