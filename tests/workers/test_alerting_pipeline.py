"""The whole alerting path in a running collector: telemetry in over HTTP, rules evaluated
by the background job, notifications dispatched and delivered to a real HTTP receiver.

Nothing here calls the workers directly: the collector runs them on short intervals (1 s)
and channels set their own group timings, so what the receiver gets is what a user of a
running collector gets.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from notify_kit import Receiver, receiving
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import create_key

FAST = {
    "TELEMETRY_ALERT_EVAL_INTERVAL": "1s",
    "TELEMETRY_ALERT_DISPATCH_INTERVAL": "1s",
    "TELEMETRY_EXTERNAL_URL": "https://telemetry.example.com",
}
TIMINGS = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}


async def until(check: Callable[[], Any], what: str, timeout_s: float = 45.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def pipeline_collector(alerting_url: str, logs_dir) -> Any:
    running = Collector(alerting_url, env=FAST).start(logs_dir)
    yield running
    running.stop()


@pytest.fixture
async def api(
    pipeline_collector: Collector, alerting_engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    key = (
        await create_key(
            alerting_engine, f"pipeline-{uuid.uuid4().hex[:6]}", ["ingest", "read", "admin"]
        )
    ).key
    async with httpx.AsyncClient(
        base_url=pipeline_collector.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


def _spans(service: str, count: int, *, error: bool) -> dict[str, Any]:
    start = datetime.now(UTC) - timedelta(seconds=5)
    return {
        "spans": [
            {
                "trace_id": uuid.uuid4().hex,
                "span_id": uuid.uuid4().hex[:16],
                "name": "POST /chat",
                "service": service,
                "kind": "server",
                "start_time": start.isoformat(),
                "duration_ms": 12.5,
                "status": "error" if error else "ok",
            }
            for _ in range(count)
        ]
    }


async def _send(api: httpx.AsyncClient, body: dict[str, Any], path: str = "spans") -> None:
    response = await api.post(f"/api/v1/ingest/{path}", json=body)
    assert response.status_code == 200 and response.json()["rejected"] == [], response.text


async def _channel(api: httpx.AsyncClient, receiver: Receiver) -> int:
    body = {"name": f"hook-{uuid.uuid4().hex[:6]}", "type": "webhook", "url": receiver.url}
    response = await api.post("/api/v1/channels", json=body | TIMINGS)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _alerts(api: httpx.AsyncClient, rule_id: int) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/alerts", params={"rule_id": rule_id})
    assert response.status_code == 200, response.text
    return response.json()["alerts"]


async def test_a_rule_fires_notifies_resolves_and_notifies_once(api: httpx.AsyncClient) -> None:
    service = f"checkout-{uuid.uuid4().hex[:6]}"
    with receiving() as receiver:
        channel = await _channel(api, receiver)
        rule = {
            "name": f"HighErrorRate-{service}",
            "signal": "spans",
            "query": {
                "aggregation": "error_rate",
                "filters": {"service": service, "category": "request"},
                "window": "1m",
                "group_by": ["service"],
            },
            "condition": {"op": ">", "threshold": 0.5},
            "for": "2s",
            "severity": "critical",
            "labels": {"team": "checkout"},
            "annotations": {
                "summary": "{{ $labels.service }} fails {{ $value | humanizePercentage }}",
                "runbook_url": "https://runbooks.example.com/errors",
            },
            "channels": [channel],
        }
        created = await api.post("/api/v1/alert-rules", json=rule)
        assert created.status_code == 201, created.text
        rule_id = created.json()["id"]

        await _send(api, _spans(service, 10, error=True))
        # pending first (for: 2s), then firing, then the notification.
        pending = await until(
            lambda: _first(_alerts(api, rule_id), state="pending"), "a pending alert"
        )
        assert pending["value"] == 1.0
        firing = await until(lambda: _first(_alerts(api, rule_id), state="firing"), "firing")
        assert firing["fired_at"] >= firing["active_at"]
        await until(lambda: receiver.requests, "the firing notification")
        (notification,) = receiver.bodies()
        labels = {
            "alertname": rule["name"],
            "service": service,
            "severity": "critical",
            "team": "checkout",
        }
        assert notification == {
            "receiver": notification["receiver"],
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {
                        "runbook_url": "https://runbooks.example.com/errors",
                        "summary": f"{service} fails 100%",
                    },
                    "startsAt": notification["alerts"][0]["startsAt"],
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": f"https://telemetry.example.com/api/v1/alert-rules/{rule_id}",
                    "fingerprint": notification["alerts"][0]["fingerprint"],
                }
            ],
            "groupLabels": {"alertname": rule["name"]},
            "commonLabels": labels,
            "commonAnnotations": {
                "runbook_url": "https://runbooks.example.com/errors",
                "summary": f"{service} fails 100%",
            },
            "externalURL": "https://telemetry.example.com",
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{rule["name"]}"}}',
            "truncatedAlerts": 0,
        }
        assert receiver.requests[0].headers["idempotency-key"]

        # Enough good requests: the error rate falls to 10/40 and the alert resolves.
        await _send(api, _spans(service, 30, error=False))
        resolved = await until(lambda: _first(_alerts(api, rule_id), state="resolved"), "resolve")
        assert resolved["resolved_at"] is not None
        await until(lambda: len(receiver.requests) >= 2, "the resolved notification")
        assert receiver.bodies()[1]["status"] == "resolved"
        assert receiver.bodies()[1]["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
        await asyncio.sleep(4)  # several dispatch rounds: nothing more is sent
        assert len(receiver.requests) == 2, receiver.bodies()


async def test_absent_fires_for_a_silent_service_and_resolves_when_it_reports(
    api: httpx.AsyncClient,
) -> None:
    service = f"batch-agent-{uuid.uuid4().hex[:6]}"
    with receiving() as receiver:
        channel = await _channel(api, receiver)
        rule = {
            "name": f"AssistantSilent-{service}",
            "signal": "spans",
            "query": {"aggregation": "absent", "filters": {"service": service}, "window": "1m"},
            "annotations": {"summary": "no spans from " + service},
            "channels": [channel],
        }
        rule_id = (await api.post("/api/v1/alert-rules", json=rule)).json()["id"]
        await until(lambda: _first(_alerts(api, rule_id), state="firing"), "absent firing")
        await until(lambda: receiver.requests, "the absent notification")
        assert receiver.bodies()[0]["alerts"][0]["annotations"]["summary"].endswith(service)

        await _send(api, _spans(service, 1, error=False))
        await until(lambda: _first(_alerts(api, rule_id), state="resolved"), "absent resolved")
        await until(lambda: len(receiver.requests) >= 2, "the resolved notification")
        assert receiver.bodies()[1]["status"] == "resolved"


async def test_silence_mutes_and_the_builtin_spike_rule_fires(api: httpx.AsyncClient) -> None:
    service = f"tools-{uuid.uuid4().hex[:6]}"
    with receiving() as receiver:
        channel = await _channel(api, receiver)
        rules = (await api.get("/api/v1/alert-rules")).json()["rules"]
        spike = next(rule for rule in rules if rule["name"] == "ErrorSpike5m")
        assert spike["builtin"] is True
        patched = await api.patch(
            f"/api/v1/alert-rules/{spike['id']}", json={"channels": [channel]}
        )
        assert patched.status_code == 200, patched.text
        # A silence on this test's service for the other built-in rule.
        new_group = next(rule for rule in rules if rule["name"] == "NewErrorGroup")
        await api.patch(f"/api/v1/alert-rules/{new_group['id']}", json={"channels": [channel]})
        silence = await api.post(
            "/api/v1/silences",
            json={
                "matchers": [
                    {"name": "alertname", "value": "NewErrorGroup"},
                    {"name": "service", "value": service},
                ],
                "ends_at": "now+1h",
                "comment": "known noisy",
            },
        )
        assert silence.status_code == 201, silence.text

        errors = {
            "errors": [
                {"type": "ToolTimeout", "message": "search tool timed out", "service": service}
                for _ in range(12)
            ]
        }
        await _send(api, errors, "errors")
        firing = await until(
            lambda: _first(_alerts(api, spike["id"]), state="firing"), "the spike alert"
        )
        assert firing["labels"]["service"] == service and firing["value"] == 12
        await until(lambda: receiver.requests, "the spike notification")
        muted = await until(
            lambda: _first(_alerts(api, new_group["id"]), state="firing"), "the new-group alert"
        )
        assert muted["silenced"] is True and muted["silenced_by"] == [silence.json()["id"]]
        await asyncio.sleep(3)  # dispatch rounds pass; the silenced alert is not sent
        names = {body["groupLabels"]["alertname"] for body in receiver.bodies()}
        assert names == {"ErrorSpike5m"}, receiver.bodies()


async def _first(alerts: Any, **match: Any) -> dict[str, Any] | None:
    for alert in await alerts:
        if all(alert.get(key) == value for key, value in match.items()):
            return alert
    return None
