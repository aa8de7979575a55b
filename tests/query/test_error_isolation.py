"""One fingerprint in two projects: each project's counts and events are its own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from query.query_kit import get_ok, rfc3339

STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/agent/tools.py", line 41, in run_tool\n'
    "    result = runner.call(args)\n"
    "TimeoutError: tool run_tests timed out"
)


async def _send_errors(client: httpx.AsyncClient, sender: str, count: int, service: str) -> str:
    """`count` occurrences of one failure; returns their (shared) fingerprint."""
    now = datetime.now(UTC)
    errors: list[dict[str, Any]] = [
        {
            "type": "TimeoutError",
            "message": "tool run_tests timed out",
            "stack": STACK,
            "service": service,
            "timestamp": rfc3339(now - timedelta(minutes=5, seconds=index)),
            "attributes": {"sender": sender},
        }
        for index in range(count)
    ]
    response = await client.post("/api/v1/ingest/errors", json={"errors": errors})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == count, answer
    fingerprints = {item["fingerprint"] for item in answer["fingerprints"]}
    assert len(fingerprints) == 1
    return fingerprints.pop()


async def test_error_data_stays_in_its_project(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    service = f"iso-{uuid.uuid4().hex[:8]}"  # the same service name in both projects too
    mine = await _send_errors(client, "mine", 2, service)
    theirs = await _send_errors(other_client, "theirs", 3, service)
    assert mine == theirs, "the test needs one fingerprint present in both projects"

    for http, sender, count in ((client, "mine", 2), (other_client, "theirs", 3)):
        overview = await get_ok(http, "/api/v1/dashboard/overview", {"window": "1h"})
        assert overview["errors"] == {"new_groups": 1, "events": count}, sender
        filtered = await get_ok(
            http, "/api/v1/dashboard/overview", {"window": "1h", "service": service}
        )
        assert filtered["errors"] == {"new_groups": 1, "events": count}, sender

        group = await get_ok(http, f"/api/v1/errors/{mine}")
        assert group["count"] == count
        assert len(group["events"]) == count
        assert {event["attributes"]["sender"] for event in group["events"]} == {sender}
        assert sum(hour["count"] for hour in group["hourly_counts"]) == count

        listed = (await get_ok(http, "/api/v1/errors"))["errors"]
        assert [(item["fingerprint"], item["count"]) for item in listed] == [(mine, count)]

    # Triage in one project leaves the other's group as it was.
    resolved = await client.patch(f"/api/v1/errors/{mine}", json={"status": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert (await get_ok(other_client, f"/api/v1/errors/{mine}"))["status"] == "unresolved"
