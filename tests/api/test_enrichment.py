"""Redaction in every signal, and GenAI cost fixed at ingest (known and unknown models)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson

SECRET = "sk-live-do-not-store"


async def test_sensitive_attributes_are_redacted_in_every_signal(client, db, project_name) -> None:
    now = datetime.now(UTC).isoformat()
    trace_id = uuid.uuid4().hex
    secrets = {
        "password": SECRET,
        "http.request.header.authorization": f"Bearer {SECRET}",
        "user_api_key": SECRET,
        "gen_ai.usage.input_tokens": 12,
    }
    span = {
        "trace_id": trace_id,
        "span_id": "00000000000000b1",
        "name": "turn",
        "service": "agent",
        "start_time": now,
        "duration_ms": 5,
        "attributes": secrets,
        "events": [
            {
                "name": "exception",
                "attributes": {
                    "exception.type": "KeyError",
                    "exception.message": "k",
                    "db.password": SECRET,
                },
            }
        ],
    }
    log = {
        "timestamp": now,
        "level": "info",
        "message": "hello",
        "service": "agent",
        "attributes": secrets,
    }
    metric = {"name": "logins", "type": "counter", "value": 1, "attributes": secrets}
    error = {"type": "AuthError", "message": "denied", "service": "agent", "attributes": secrets}
    for path, key, item in (
        ("spans", "spans", span),
        ("logs", "logs", log),
        ("metrics", "metrics", metric),
        ("errors", "errors", error),
    ):
        answer = (await client.post(f"/api/v1/ingest/{path}", json={key: [item]})).json()
        assert answer["accepted"] == 1, (path, answer)

    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    stored = []
    for query in (
        "SELECT attributes::text, events::text FROM spans WHERE project_id = $1",
        "SELECT attributes::text, body::text FROM logs WHERE project_id = $1",
        "SELECT attributes::text, '' FROM metric_series WHERE project_id = $1",
        "SELECT attributes::text, message FROM error_events WHERE project_id = $1",
    ):
        rows = await db.fetch(query, project_id)
        assert rows, query
        stored.extend(value for row in rows for value in row)
    assert not [value for value in stored if SECRET in value]
    span_attributes = orjson.loads(stored[0])
    assert span_attributes["password"] == "[REDACTED]"
    assert span_attributes["http.request.header.authorization"] == "[REDACTED]"
    assert span_attributes["gen_ai.usage.input_tokens"] == 12  # counts are not secrets
    # Two error events: the span's exception event and the native error.
    assert len([value for value in stored if '"[REDACTED]"' in value]) >= 6


async def test_cost_for_known_unknown_and_client_priced_models(client) -> None:
    trace_id = uuid.uuid4().hex
    now = datetime.now(UTC).isoformat()

    def call(index: int, attributes: dict) -> dict:
        return {
            "trace_id": trace_id,
            "span_id": f"{index:016x}",
            "name": "chat",
            "service": "gateway",
            "start_time": now,
            "duration_ms": 10,
            "attributes": attributes,
        }

    spans = [
        call(
            1,
            {
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 2000,
                "gen_ai.usage.output_tokens": 1000,
            },
        ),
        call(
            2,
            {
                "gen_ai.request.model": "acme-llm-7",
                "gen_ai.usage.input_tokens": 50,
                "gen_ai.usage.output_tokens": 5,
            },
        ),
        call(
            3,
            {
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 10,
                "gen_ai.usage.cost": 0.42,
            },
        ),
        call(
            4,
            {
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 1000,
                "gen_ai.usage.completion_tokens": 100,
            },
        ),
    ]
    answer = (await client.post("/api/v1/ingest/spans", json={"spans": spans})).json()
    assert answer["accepted"] == 4
    trace = (await client.get(f"/api/v1/traces/{trace_id}")).json()
    by_id = {span["span_id"]: span["gen_ai"] for span in trace["spans"]}
    # gpt-4o-mini: $0.15 in, $0.60 out per million tokens.
    assert by_id[f"{1:016x}"]["cost_usd"] == round((2000 * 0.15 + 1000 * 0.60) / 1e6, 12)
    unknown = by_id[f"{2:016x}"]
    assert unknown["cost_usd"] is None and unknown["input_tokens"] == 50
    assert by_id[f"{3:016x}"]["cost_usd"] == 0.42  # the client's own figure wins
    legacy = by_id[f"{4:016x}"]
    assert legacy["provider"] == "openai" and legacy["input_tokens"] == 1000
    assert legacy["cost_usd"] == (1000 * 2.5 + 100 * 10) / 1e6
