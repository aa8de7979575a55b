"""The database going away under a running collector: 503 + Retry-After, then recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from google.rpc import code_pb2, status_pb2
from otlp_testkit import (
    JSON,
    PROTOBUF,
    TcpProxy,
    simple_span,
    stored_span_ids,
    traces_json,
    traces_pb,
    via_proxy,
)
from support import Collector


@pytest.fixture
async def proxied(
    proxy: TcpProxy, database_url: str, start_collector: Callable[..., Collector], key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A collector whose only way to PostgreSQL is through `proxy`."""
    running = start_collector(
        database_url=via_proxy(database_url, proxy.port),
        env={"TELEMETRY_DB_CONNECT_TIMEOUT_S": "2", "TELEMETRY_RETRY_AFTER_S": "7"},
    )
    async with httpx.AsyncClient(
        base_url=running.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        yield http


async def _post(http: httpx.AsyncClient, media: str, **headers: str) -> tuple[httpx.Response, Any]:
    span = simple_span()
    if media == JSON:
        response = await http.post("/v1/traces", json=traces_json([span]), headers=headers)
    else:
        response = await http.post(
            "/v1/traces",
            content=traces_pb([span]).SerializeToString(),
            headers={"content-type": PROTOBUF, **headers},
        )
    return response, span


def _assert_unavailable(response: httpx.Response, media: str) -> str:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "7"
    assert response.headers["content-type"] == media
    if media == JSON:
        body = response.json()
        assert set(body) == {"code", "message"}
        code, message = body["code"], body["message"]
    else:
        status = status_pb2.Status.FromString(response.content)
        code, message = status.code, status.message
    assert code == code_pb2.UNAVAILABLE
    return message


async def _until_accepted(
    http: httpx.AsyncClient, media: str, within_s: float
) -> tuple[httpx.Response, Any]:
    """Post until a 200 (every other answer must be a proper 503); the last answer."""
    deadline = time.monotonic() + within_s
    while True:
        response, span = await _post(http, media)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        _assert_unavailable(response, media)
        await asyncio.sleep(0.25)
    assert response.status_code == 200, response.text
    return response, span


async def test_outage_answers_503_then_recovers(
    proxied: httpx.AsyncClient,
    proxy: TcpProxy,
    db: asyncpg.Connection,
    project_name: str,
    make_key: Callable[..., Any],
) -> None:
    response, before = await _post(proxied, JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    # A key the collector has never seen, so checking it needs the database too.
    fresh_key = await make_key(project_name, "ingest")
    read_key = await make_key(project_name, "read")

    proxy.stop()
    refused = []
    for media in (JSON, PROTOBUF):
        started = time.monotonic()
        response, span = await _post(proxied, media)
        assert "database is unavailable" in _assert_unavailable(response, media)
        assert time.monotonic() - started < 10
        refused.append(span)
    response, span = await _post(proxied, PROTOBUF, authorization=f"Bearer {fresh_key}")
    _assert_unavailable(response, PROTOBUF)
    refused.append(span)
    # Native ingest answers the same way, in the /api error shape.
    span = simple_span()
    native = {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "name": span.name,
        "service": "outage",
        "start_time": span.start_ns / 1e9,
        "duration_ms": 1,
    }
    response = await proxied.post("/api/v1/ingest/spans", json={"spans": [native]})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "unavailable"
    refused.append(span)

    # Queries answer the same way, in the /api error shape.
    query = await proxied.get(f"/api/v1/traces/{before.trace_id}")
    assert query.status_code == 503, query.text
    assert query.headers["retry-after"] == "7"
    assert query.headers["content-type"] == "application/json"
    assert query.json()["error"]["code"] == "unavailable"
    query = await proxied.get(
        f"/api/v1/traces/{before.trace_id}", headers={"authorization": f"Bearer {read_key}"}
    )
    assert query.status_code == 503, query.text
    assert query.headers["retry-after"] == "7"
    assert query.json()["error"]["code"] == "unavailable"

    ready = await proxied.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/json"
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unreachable")
    # Still alive: only readiness fails.
    assert (await proxied.get("/healthz")).status_code == 200

    proxy.start()
    response, after = await _until_accepted(proxied, JSON, within_s=20)
    assert response.json() == {}
    response, after_fresh = await _post(proxied, JSON, authorization=f"Bearer {fresh_key}")
    assert response.status_code == 200, response.text
    assert (await proxied.get("/readyz")).status_code == 200

    stored = await stored_span_ids(
        db,
        project_name,
        [span.trace_id for span in (before, after, after_fresh, *refused)],
    )
    # Only what was acknowledged is there: a 503 stored nothing.
    assert stored == sorted([before.span_id, after.span_id, after_fresh.span_id])


async def test_frozen_database_is_answered_like_a_down_one(
    proxy: TcpProxy,
    database_url: str,
    start_collector: Callable[..., Collector],
    key: str,
    db: asyncpg.Connection,
    project_name: str,
) -> None:
    """A database that accepts connections and never answers (SIGSTOP, a partition)."""
    running = start_collector(
        database_url=via_proxy(database_url, proxy.port),
        env={
            "TELEMETRY_DB_CONNECT_TIMEOUT_S": "2",
            "TELEMETRY_DB_STATEMENT_TIMEOUT_S": "2",
            "TELEMETRY_RETRY_AFTER_S": "7",
        },
    )
    async with httpx.AsyncClient(
        base_url=running.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        # Warm both pools, so frozen connections are what the collector holds.
        response, before = await _post(http, PROTOBUF)
        assert response.status_code == 200, response.text
        assert (await http.get(f"/api/v1/traces/{before.trace_id}")).status_code == 200

        proxy.freeze()
        # A read meets the frozen connections first: the statement timeout ends it.
        started = time.monotonic()
        query = await http.get(f"/api/v1/traces/{before.trace_id}")
        assert time.monotonic() - started < 15, "a read hung on the frozen database"
        assert query.status_code == 503, query.text
        assert query.headers["retry-after"] == "7"
        assert query.json()["error"]["code"] == "unavailable"

        refused = []
        for media in (PROTOBUF, JSON, PROTOBUF):
            started = time.monotonic()
            response, span = await _post(http, media)
            # The commit timeout is 30 s; a frozen database must not take that long.
            assert time.monotonic() - started < 10, "ingest hung on the frozen database"
            assert "database is unavailable" in _assert_unavailable(response, media)
            refused.append(span)

        # Now that ingest has found the database away, reads are refused at once too.
        started = time.monotonic()
        query = await http.get(f"/api/v1/traces/{before.trace_id}")
        assert query.status_code == 503, query.text
        assert time.monotonic() - started < 2
        health = await http.get("/healthz", timeout=5)
        assert health.status_code == 200
        started = time.monotonic()
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("unreachable")
        assert time.monotonic() - started < 5, "readiness waited for the frozen database"

        # The partition heals: connections made while it lasted are gone, new ones work.
        proxy.stop()
        proxy.start()
        response, after = await _until_accepted(http, PROTOBUF, within_s=30)
        assert (await http.get(f"/api/v1/traces/{after.trace_id}")).status_code == 200

    stored = await stored_span_ids(
        db, project_name, [span.trace_id for span in (before, after, *refused)]
    )
    assert stored == sorted([before.span_id, after.span_id])
    # No request failed with a traceback (background jobs may log theirs).
    assert running.log_path is not None
    lines = [orjson.loads(line) for line in running.log_path.read_text().splitlines()]
    assert not [line for line in lines if "exception" in line and "request_id" in line]
