"""A client that leaves is not a server error, and work done for it stops where it can:
nothing is acknowledged to nobody, what was committed stays committed."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from otlp_testkit import PROTOBUF, simple_span, stored_span_ids, traces_pb
from support import Collector, RawHttp, table_locked, wait_for_lock_waiters


async def _wait_for(predicate: Callable[[], Any], what: str, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _request_lines(log: Path, path: str) -> list[dict[str, Any]]:
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "request" and line["path"] == path]


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} ([0-9.e+]+)$", text, re.M):
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(key) == value for key, value in labels.items()):
            total += float(match.group(2))
    return total


@pytest.mark.parametrize(
    ("path", "content_type", "signal"),
    [("/v1/traces", PROTOBUF, "traces"), ("/api/v1/ingest/logs", "application/json", "logs")],
)
async def test_a_client_leaving_mid_body_is_not_a_server_error(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    project_name: str,
    path: str,
    content_type: str,
    signal: str,
) -> None:
    collector = start_collector(env={"TELEMETRY_LOG_LEVEL": "info"})
    key = await make_key(project_name, "ingest")
    for _ in range(3):
        leaving = RawHttp(collector.port)
        headers = {
            "Content-Type": content_type,
            "Content-Length": "100000",
            "Authorization": f"Bearer {key}",
        }
        leaving.send(leaving.head("POST", path, headers) + b"\x0a" * 1000)
        leaving.close()
    assert collector.log_path is not None
    log = collector.log_path

    async def all_logged() -> bool:
        return len(_request_lines(log, path)) == 3

    await _wait_for(all_logged, "the request log lines")
    assert {line["status"] for line in _request_lines(log, path)} == {499}
    # No error while serving a request (background jobs may log their own).
    errors = [
        line
        for line in map(orjson.loads, log.read_text().splitlines())
        if line["level"] == "error" and ("request_id" in line or line["logger"] == "uvicorn.error")
    ]
    assert not errors, errors
    async with httpx.AsyncClient(base_url=collector.url) as http:
        metrics = (await http.get("/metrics")).text
    route = "telemetry_http_request_duration_seconds_count"
    assert _metric(metrics, route, route=path, status="5xx") == 0
    assert _metric(metrics, route, route=path, status="4xx") == 3
    protocol = "protobuf" if content_type == PROTOBUF else "native"
    assert (
        _metric(
            metrics,
            "telemetry_ingest_requests_total",
            signal=signal,
            protocol=protocol,
            outcome="disconnected",
        )
        == 3
    )


async def test_work_for_a_client_that_left_is_dropped_and_committed_work_kept(
    start_collector: Callable[..., Collector],
    make_key: Callable[..., Any],
    project_name: str,
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    collector = start_collector(
        env={
            "TELEMETRY_LOG_LEVEL": "info",
            "TELEMETRY_DB_STATEMENT_TIMEOUT_S": "60",
            # Only the writer's flushes may wait for the lock below.
            "TELEMETRY_WORKERS_ENABLED": "false",
        }
    )
    key = await make_key(project_name, "ingest")
    auth = {"Authorization": f"Bearer {key}", "Content-Type": PROTOBUF}
    first, second = simple_span(), simple_span()
    left = [simple_span() for _ in range(3)]
    left[1].trace_id = left[2].trace_id = left[0].trace_id

    # A lock on `spans` stops both flushers inside their COPY (the database still answers,
    # so nothing else trips), and the third request waits in the writer's queue.
    async with httpx.AsyncClient(base_url=collector.url, headers=auth, timeout=60) as http:
        async with table_locked(database_url, "spans"):
            answered = []
            for count, span in enumerate((first, second), start=1):
                body = traces_pb([span]).SerializeToString()
                answered.append(asyncio.create_task(http.post("/v1/traces", content=body)))
                # One at a time, so that each flusher takes one (and none is left to free).
                await wait_for_lock_waiters(db, count)
            leaving = RawHttp(collector.port)
            body = traces_pb(left).SerializeToString()
            leaving.send(
                leaving.head("POST", "/v1/traces", {**auth, "Content-Length": str(len(body))})
                + body
            )

            async def queued() -> bool:
                text = (await http.get("/metrics")).text
                return "telemetry_writer_queue_rows 5.0" in text

            await _wait_for(queued, "the third request to be queued")
            leaving.close()
            assert collector.log_path is not None
            log = collector.log_path

            async def noticed() -> bool:
                return any(line["status"] == 499 for line in _request_lines(log, "/v1/traces"))

            await _wait_for(noticed, "the collector to notice the client left")
        # Committed after all, and acknowledged: the work of clients still waiting.
        assert [(await task).status_code for task in answered] == [200, 200]

        async def drained() -> bool:
            return "telemetry_writer_queue_rows 0.0" in (await http.get("/metrics")).text

        await _wait_for(drained, "the writer's queue to empty")

    assert await stored_span_ids(db, project_name, [first.trace_id, second.trace_id]) == sorted(
        [first.span_id, second.span_id]
    )
    assert await stored_span_ids(db, project_name, [left[0].trace_id]) == []
