"""Real collector processes on one database: each notification is sent once however many
processes run the jobs, and a restart does not send a firing group again."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from notify_kit import EXTERNAL_URL, receiving

# An `absent` rule over a service that never reports: were an evaluator to run, it would
# keep this alert firing, exactly as it is written here.
SILENT = {
    "signal": "logs",
    "query": {
        "aggregation": "absent",
        "filters": {"service": f"nobody-{uuid.uuid4().hex[:6]}"},
        "window": "5m",
        "group_by": [],
    },
    "condition": None,
}


async def _until(check, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def test_several_processes_send_once_and_a_restart_sends_nothing_again(
    alerting, start_collector, notify_database_url
) -> None:
    with receiving() as receiver:
        channel = await alerting.channel(
            receiver.url, group_wait="1s", group_interval="1s", repeat_interval="1h"
        )
        rule = await alerting.rule("AssistantSilent", [channel], **SILENT)
        await alerting.fire(rule, "AssistantSilent", {}, datetime.now(UTC))
        env = {
            "TELEMETRY_ALERT_DISPATCH_INTERVAL": "200ms",
            "TELEMETRY_EXTERNAL_URL": EXTERNAL_URL,
        }
        first = start_collector(env, database_url=notify_database_url)
        second = start_collector(env, database_url=notify_database_url)
        assert await _until(lambda: len(receiver.requests) >= 1)
        await asyncio.sleep(3)  # many more rounds in both processes
        assert len(receiver.requests) == 1
        first.stop()
        second.stop()

        start_collector(env, database_url=notify_database_url)
        await asyncio.sleep(3)
        assert len(receiver.requests) == 1  # repeat_interval (1h) has not passed
        rows = await alerting.notifications(channel)
        assert [row["status"] for row in rows] == ["sent"]
        assert receiver.requests[0].headers["idempotency-key"] == str(rows[0]["id"])
