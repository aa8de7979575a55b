"""Error groups end to end: native errors, span exception events, triage, regression."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

PY_STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/agent/tools.py", line {line}, in run_tool\n'
    "    result = tool(**arguments)\n"
    '  File "/srv/agent/shell.py", line 12, in run_tests\n'
    "    raise TimeoutError(message)\n"
    "TimeoutError: {message}"
)


def _error(message: str, service: str = "agent", **extra: object) -> dict[str, object]:
    return {"type": "TimeoutError", "message": message, "service": service, **extra}


async def _post_errors(client: httpx.AsyncClient, *errors: dict[str, object]) -> dict:
    response = await client.post("/api/v1/ingest/errors", json={"errors": list(errors)})
    assert response.status_code == 200, response.text
    return response.json()


async def test_native_errors_group_by_stack_and_report_bad_items(client) -> None:
    answer = await _post_errors(
        client,
        _error("tests timed out after 30s", stack=PY_STACK.format(line=10, message="a")),
        _error("tests timed out after 45s", stack=PY_STACK.format(line=99, message="b")),
        {"message": "no type or service"},
        _error("user 42 not found"),
        _error("user 97 not found"),
        _error("anything", fingerprint=["tool-timeouts"]),
        _error("something else", fingerprint="tool-timeouts"),
    )
    assert answer["accepted"] == 6
    assert [item["index"] for item in answer["rejected"]] == [2]
    assert "type" in answer["rejected"][0]["reason"]
    prints = {item["index"]: item["fingerprint"] for item in answer["fingerprints"]}
    assert prints[0] == prints[1]  # same stack, different line numbers and messages
    assert prints[3] == prints[4]  # no stack: normalized message
    assert prints[5] == prints[6]  # custom fingerprint wins
    assert len({prints[0], prints[3], prints[5]}) == 3

    listed = (await client.get("/api/v1/errors", params={"sort": "count"})).json()["errors"]
    by_print = {group["fingerprint"]: group for group in listed}
    assert by_print[prints[0]]["count"] == 2
    assert by_print[prints[0]]["culprit"] == "/srv/agent/shell.py in run_tests"
    assert by_print[prints[3]]["message"] == "user <num> not found"
    assert by_print[prints[3]]["status"] == "unresolved"
    assert listed[0]["count"] >= listed[-1]["count"]


async def test_span_exception_events_become_groups_once(client) -> None:
    trace_id, span_id = uuid.uuid4().bytes, uuid.uuid4().bytes[:8]
    now = time.time_ns() - 5 * 10**9  # a finished span: it ended before we query
    request = trace_service_pb2.ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(
        common_pb2.KeyValue(key="service.name", value=common_pb2.AnyValue(string_value="tools"))
    )
    span = resource_spans.scope_spans.add().spans.add(
        trace_id=trace_id,
        span_id=span_id,
        name="execute_tool run_tests",
        start_time_unix_nano=now,
        end_time_unix_nano=now + 10**9,
        status=trace_pb2.Status(code=2, message="boom"),
    )
    marker = uuid.uuid4().hex
    event = span.events.add(time_unix_nano=now + 5 * 10**8, name="exception")
    for key, value in {
        "exception.type": "RuntimeError",
        "exception.message": f"tool crashed {marker}",
        "exception.stacktrace": PY_STACK.format(line=3, message=marker).replace(
            "run_tests", f"run_{marker}"
        ),
    }.items():
        event.attributes.append(
            common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))
        )
    body = request.SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    for _ in range(2):  # the second is a client retry: must not count twice
        response = await client.post("/v1/traces", content=body, headers=headers)
        assert response.status_code == 200

    groups = (await client.get("/api/v1/errors", params={"service": "tools"})).json()["errors"]
    group = next(group for group in groups if marker in group["culprit"])
    assert group["type"] == "RuntimeError"
    assert group["count"] == 1
    detail = (await client.get(f"/api/v1/errors/{group['fingerprint']}")).json()
    assert detail["events"][0]["trace_id"] == trace_id.hex()
    assert detail["events"][0]["span_id"] == span_id.hex()
    assert detail["events"][0]["source"] == "span"
    assert detail["events"][0]["message"] == f"tool crashed {marker}"
    assert sum(item["count"] for item in detail["hourly_counts"]) == 1


async def test_resolve_regress_and_ignore(client) -> None:
    marker = uuid.uuid4().hex
    first = await _post_errors(client, _error("x", fingerprint=[marker]))
    fingerprint = first["fingerprints"][0]["fingerprint"]

    resolved = await client.patch(f"/api/v1/errors/{fingerprint}", json={"status": "resolved"})
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolved_at"] is not None

    await _post_errors(client, _error("x again", fingerprint=[marker]))
    group = (await client.get(f"/api/v1/errors/{fingerprint}")).json()
    assert (group["status"], group["regressed"], group["count"]) == ("unresolved", True, 2)

    ignored = await client.patch(f"/api/v1/errors/{fingerprint}", json={"status": "ignored"})
    assert ignored.json()["status"] == "ignored"
    await _post_errors(client, _error("x once more", fingerprint=[marker]))
    group = (await client.get(f"/api/v1/errors/{fingerprint}")).json()
    assert (group["status"], group["count"]) == ("ignored", 3)

    listed = (await client.get("/api/v1/errors", params={"status": "ignored"})).json()["errors"]
    assert fingerprint in {item["fingerprint"] for item in listed}
    unresolved = (await client.get("/api/v1/errors", params={"status": "unresolved"})).json()
    assert fingerprint not in {item["fingerprint"] for item in unresolved["errors"]}


async def test_late_event_from_before_resolution_does_not_regress(client) -> None:
    marker = uuid.uuid4().hex
    fingerprint = (await _post_errors(client, _error("y", fingerprint=[marker])))["fingerprints"][
        0
    ]["fingerprint"]
    await client.patch(f"/api/v1/errors/{fingerprint}", json={"status": "resolved"})
    earlier = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    await _post_errors(client, _error("y", fingerprint=[marker], timestamp=earlier))
    group = (await client.get(f"/api/v1/errors/{fingerprint}")).json()
    assert (group["status"], group["regressed"], group["count"]) == ("resolved", False, 2)


async def test_error_api_bad_input_and_isolation(client, collector, make_key) -> None:
    marker = uuid.uuid4().hex
    fingerprint = (await _post_errors(client, _error("z", fingerprint=[marker])))["fingerprints"][
        0
    ]["fingerprint"]
    bad = await client.get("/api/v1/errors/not-a-fingerprint")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"
    assert (await client.get(f"/api/v1/errors/{'0' * 32}")).status_code == 404
    wrong_sort = await client.get("/api/v1/errors", params={"sort": "loudest"})
    assert wrong_sort.status_code == 400
    assert "last_seen" in wrong_sort.json()["error"]["message"]
    bad_time = await client.get("/api/v1/errors", params={"start": "yesterday-ish"})
    assert bad_time.status_code == 400
    assert "start" in bad_time.json()["error"]["message"]
    bad_status = await client.patch(f"/api/v1/errors/{fingerprint}", json={"status": "gone"})
    assert bad_status.status_code == 400
    assert "status" in bad_status.json()["error"]["message"]

    other_key = await make_key(f"other-{marker}", "read", "ingest")
    async with httpx.AsyncClient(base_url=collector.url, headers={"x-api-key": other_key}) as other:
        assert (await other.get(f"/api/v1/errors/{fingerprint}")).status_code == 404
        assert (await other.get("/api/v1/errors")).json() == {"errors": []}
        patched = await other.patch(f"/api/v1/errors/{fingerprint}", json={"status": "ignored"})
        assert patched.status_code == 404


async def test_native_spans_valid_and_invalid_items(client) -> None:
    trace_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    spans = [
        {
            "trace_id": trace_id,
            "span_id": "00000000000000a1",
            "name": "turn",
            "service": "assistant",
            "kind": "server",
            "start_time": now.isoformat(),
            "duration_ms": 1500,
            "attributes": {"user.id": "u1", "password": "hunter2"},
        },
        {
            "trace_id": trace_id,
            "span_id": "00000000000000a2",
            "parent_span_id": "00000000000000a1",
            "name": "chat claude",
            "service": "assistant",
            "kind": "client",
            "start_time": now.timestamp() + 0.1,
            "end_time": now.timestamp() + 1.1,
            "status": "error",
            "status_message": "overloaded",
            "attributes": {
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4-5",
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 500,
            },
        },
        {
            "trace_id": "xyz",
            "span_id": "00000000000000a3",
            "name": "n",
            "service": "s",
            "start_time": now.isoformat(),
            "duration_ms": 1,
        },
        {
            "trace_id": trace_id,
            "span_id": "00000000000000a4",
            "name": "n",
            "service": "s",
            "start_time": now.isoformat(),
        },
        {
            "trace_id": trace_id,
            "span_id": "00000000000000a5",
            "name": "n",
            "service": "s",
            "start_time": (now - timedelta(days=30)).isoformat(),
            "duration_ms": 1,
        },
        {
            "trace_id": trace_id,
            "span_id": "00000000000000a6",
            "name": "n",
            "service": "s",
            "start_time": now.isoformat(),
            "duration_ms": 1,
            "kind": "sideways",
        },
    ]
    answer = (await client.post("/api/v1/ingest/spans", json={"spans": spans})).json()
    assert answer["accepted"] == 2
    reasons = {item["index"]: item["reason"] for item in answer["rejected"]}
    assert set(reasons) == {2, 3, 4, 5}
    assert "trace_id" in reasons[2]
    assert "end_time or duration_ms" in reasons[3]
    assert "retention" in reasons[4]
    assert "kind" in reasons[5]

    trace = (await client.get(f"/api/v1/traces/{trace_id}")).json()
    assert trace["span_count"] == 2
    assert trace["root_name"] == "turn"
    assert trace["duration_ms"] == 1500
    root, child = trace["spans"]
    assert root["attributes"] == {"user.id": "u1", "password": "[REDACTED]"}
    assert child["parent_span_id"] == "00000000000000a1"
    assert child["status"] == "error" and child["kind"] == "client"
    assert child["gen_ai"]["model"] == "claude-sonnet-4-5"
    # Claude Sonnet 4.5: $3 per million input tokens, $15 per million output tokens.
    assert abs(child["gen_ai"]["cost_usd"] - (1000 * 3 + 500 * 15) / 1e6) < 1e-9


async def test_native_body_errors(client) -> None:
    not_json = await client.post(
        "/api/v1/ingest/spans", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["code"] == "bad_request"
    missing = await client.post("/api/v1/ingest/errors", json={"items": []})
    assert missing.status_code == 400
    assert '"errors"' in missing.json()["error"]["message"]
    wrong_type = await client.post(
        "/api/v1/ingest/errors", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_native_logs_with_error_payload_become_error_events(client, db) -> None:
    marker = uuid.uuid4().hex
    now = datetime.now(UTC)
    logs = [
        {
            "timestamp": now.isoformat(),
            "level": "error",
            "message": f"tool failed {marker}",
            "service": "assistant",
            "trace_id": "5b8efff798038103d269b633813fc60c",
            "span_id": "eee19b7ec3c1b174",
            "attributes": {"tool": "run_tests", "huge": 2**70, "note": "a\x00b"},
            "error": {"type": "TimeoutError", "message": f"timed out {marker}", "stack": None},
        },
        {"timestamp": now.timestamp(), "level": "info", "message": "plain", "service": "assistant"},
        {"timestamp": now.isoformat(), "level": "loud", "message": "x", "service": "assistant"},
    ]
    answer = (await client.post("/api/v1/ingest/logs", json={"logs": logs})).json()
    assert answer["accepted"] == 2
    assert [item["index"] for item in answer["rejected"]] == [2]
    assert "level" in answer["rejected"][0]["reason"]
    stored = await db.fetchrow(
        "SELECT severity_number, body, attributes, trace_id FROM logs WHERE search_text LIKE $1",
        f"%{marker}%",
    )
    assert stored["severity_number"] == 17
    assert stored["trace_id"].hex() == "5b8efff798038103d269b633813fc60c"
    groups = (await client.get("/api/v1/errors", params={"service": "assistant"})).json()
    group = next(item for item in groups["errors"] if item["type"] == "TimeoutError")
    detail = (await client.get(f"/api/v1/errors/{group['fingerprint']}")).json()
    assert detail["events"][0]["source"] == "log"
    assert detail["events"][0]["message"] == f"timed out {marker}"
    assert detail["events"][0]["span_id"] == "eee19b7ec3c1b174"


async def test_native_error_with_its_own_timestamp_is_idempotent(client) -> None:
    marker = uuid.uuid4().hex
    stamped = _error("retry me", fingerprint=[marker], timestamp=datetime.now(UTC).isoformat())
    for _ in range(2):  # a client retrying after a lost answer
        await _post_errors(client, stamped)
    unstamped = _error("no time of its own", fingerprint=[marker])
    for _ in range(2):  # no timestamp: each send is a new occurrence
        await _post_errors(client, unstamped)
    fingerprint = (await _post_errors(client, stamped))["fingerprints"][0]["fingerprint"]
    group = (await client.get(f"/api/v1/errors/{fingerprint}")).json()
    assert group["count"] == 3
