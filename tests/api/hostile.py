"""Shared by the hostile-input tests: hostile values, and checks of the answers' shapes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import httpx

TIMES_OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "now-99999999999d",
    "now+9999999w",
    "now-" + "9" * 400 + "d",
    "now-" + "9" * 400,
    "now-" + "9" * 60_000,  # once minutes of regex backtracking, on the event loop
]
# The endpoints' own item field that holds the item's time.
TIME_FIELDS = {
    "spans": "start_time",
    "logs": "timestamp",
    "metrics": "timestamp",
    "errors": "timestamp",
}
READ_PATHS = [
    "/api/v1/traces",
    "/api/v1/logs",
    "/api/v1/services",
    "/api/v1/errors",
    "/api/v1/metrics/query",
]


def now_text() -> str:
    return datetime.now(UTC).isoformat()


def native_item(endpoint: str, **overrides: Any) -> dict[str, Any]:
    """A valid item of /api/v1/ingest/<endpoint>, with `overrides`."""
    items: dict[str, dict[str, Any]] = {
        "spans": {
            "trace_id": os.urandom(16).hex(),
            "span_id": os.urandom(8).hex(),
            "name": "op",
            "service": "hostile",
            "start_time": now_text(),
            "duration_ms": 5,
        },
        "logs": {"timestamp": now_text(), "message": "m", "service": "hostile"},
        "metrics": {"name": "hostile.value", "type": "gauge", "value": 1},
        "errors": {"type": "HostileError", "message": "m", "service": "hostile"},
    }
    return {**items[endpoint], **overrides}


def nested(depth: int) -> Any:
    """`depth` maps and lists, alternating, around a string."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


def error_message(response: httpx.Response, status: int, *words: str) -> str:
    """The message of a `{"error": {"code", "message"}}` answer with `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    message = body["error"]["message"]
    for word in words:
        assert word in message, message
    return message


def only_first_rejected(response: httpx.Response, *words: str) -> str:
    """A native answer that accepted every item but the first; its reason has `words`."""
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [item["index"] for item in answer["rejected"]] == [0], answer
    assert answer["accepted"] >= 1, answer
    reason = answer["rejected"][0]["reason"]
    for word in words:
        assert word in reason, reason
    return reason
