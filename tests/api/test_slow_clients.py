"""Slow and idle clients are cut after the read timeouts, and a flood of connections is
capped while health checks still get through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from otlp_testkit import PROTOBUF, simple_span, traces_pb
from support import Collector, ConnectionClosed, RawHttp

QUICK = {
    "TELEMETRY_HEADER_READ_TIMEOUT_S": "1",
    "TELEMETRY_BODY_READ_TIMEOUT_S": "1",
    "TELEMETRY_KEEP_ALIVE_TIMEOUT_S": "1",
    "TELEMETRY_LOG_LEVEL": "info",
}


async def test_slow_heads_and_bodies_are_cut(
    start_collector: Callable[..., Collector], make_key: Callable[..., Any], project_name: str
) -> None:
    collector = start_collector(env=QUICK)
    key = await make_key(project_name, "ingest")
    # Each wait is bounded by the socket's 10 s timeout: "closed" means within it, where
    # before these timeouts such connections were held for ever.
    silent = RawHttp(collector.port)
    assert silent.closed_by_server(), "a connection that sends nothing was kept"

    half_head = RawHttp(collector.port)
    half_head.send(b"POST /v1/traces HTTP/1.1\r\nHost: collector\r\nContent-Ty")
    assert half_head.closed_by_server(), "a request head that never ends was kept"

    body = traces_pb([simple_span()]).SerializeToString()
    half_body = RawHttp(collector.port)
    headers = {
        "Content-Type": PROTOBUF,
        "Content-Length": str(len(body)),
        "Authorization": f"Bearer {key}",
    }
    half_body.send(half_body.head("POST", "/v1/traces", headers) + body[:10])
    assert half_body.response().status == 408
    assert half_body.closed_by_server()

    idle = RawHttp(collector.port)
    assert idle.request("GET", "/healthz").status == 200
    assert idle.closed_by_server(), "an idle keep-alive connection was kept"

    huge_head = RawHttp(collector.port)
    answer = huge_head.request("GET", "/healthz", headers={"X-Padding": "a" * 70_000})
    assert answer.status == 431

    # None of this is a server error (background jobs may log their own).
    assert collector.log_path is not None
    lines = [orjson.loads(line) for line in collector.log_path.read_text().splitlines()]
    assert [line["status"] for line in lines if line.get("path") == "/v1/traces"] == [408]
    errors = [line for line in lines if line["level"] == "error"]
    assert not [e for e in errors if "request_id" in e or e["logger"] == "uvicorn.error"]
    fresh = RawHttp(collector.port)
    assert fresh.request("POST", "/v1/traces", body, headers).status == 200
    for connection in (silent, half_head, half_body, idle, huge_head, fresh):
        connection.close()


async def test_a_flood_of_connections_is_capped_and_health_checks_get_through(
    start_collector: Callable[..., Collector],
) -> None:
    cap = 20
    collector = start_collector(
        env={
            "TELEMETRY_MAX_CONNECTIONS": str(cap),
            "TELEMETRY_HEADER_READ_TIMEOUT_S": "60",
            "TELEMETRY_KEEP_ALIVE_TIMEOUT_S": "60",
        }
    )
    idle = [RawHttp(collector.port) for _ in range(cap)]
    # Past the cap: a health check is answered, anything else is refused and closed.
    refused = RawHttp(collector.port)
    answer = refused.request("GET", "/api/v1/services")
    assert answer.status == 503
    assert answer.headers["retry-after"] == "5"
    assert refused.closed_by_server()
    probes = []
    for _ in range(64):  # the reserve: probes keep their connections open
        probe = RawHttp(collector.port)
        assert probe.request("GET", "/healthz").status == 200
        probes.append(probe)
    # Past the reserve as well: closed at once, before it costs anything.
    shut = RawHttp(collector.port)
    try:
        shut.send(shut.head("GET", "/healthz", {}))
        assert shut.closed_by_server()
    except ConnectionClosed:
        pass
    for connection in (*idle, *probes, refused, shut):
        connection.close()
    # Once they are gone, requests are served again.
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(base_url=collector.url) as http:
        while (status := (await http.get("/api/v1/services")).status_code) == 503:
            assert time.monotonic() < deadline, "the cap was never released"
            await asyncio.sleep(0.1)
    assert status == 401
