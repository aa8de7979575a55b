"""After any error answer the connection stays usable: clients keep their keep-alive
connection whatever they were told, including a 500 from a bug."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
from otlp_testkit import JSON, PROTOBUF, new_trace_id, simple_span, traces_pb
from support import Collector, free_port

from app.api.failsafe import Failsafe
from app.connections import ConnectionLimits, protocol_class


def _client_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


def _one_connection(base_url: str, **headers: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(base_url=base_url, limits=limits, headers=headers, timeout=30)


async def test_the_connection_survives_every_error_answer(
    start_collector: Callable[..., Collector], make_key: Callable[..., Any], project_name: str
) -> None:
    collector = start_collector(env={"TELEMETRY_MAX_BODY_BYTES": "10000"})
    key = await make_key(project_name, "ingest", "read")
    spans = traces_pb([simple_span()]).SerializeToString()
    auth = {"authorization": f"Bearer {key}"}
    requests: list[tuple[int, str, str, dict[str, Any]]] = [
        # Answered before the body is read, which the server must then skip.
        (401, "POST", "/v1/traces", {"content": b"\0" * 5000, "headers": {"authorization": ""}}),
        (415, "POST", "/v1/traces", {"content": spans, "headers": {"content-type": "text/plain"}}),
        (413, "POST", "/v1/traces", {"content": b"\0" * 20000}),
        (415, "POST", "/v1/traces", {"content": spans, "headers": {"content-encoding": "br"}}),
        (400, "POST", "/v1/traces", {"content": b"\xff\xff\xff not protobuf"}),
        (400, "POST", "/api/v1/ingest/spans", {"content": b"{", "headers": {"content-type": JSON}}),
        (400, "GET", "/api/v1/traces/not-hex", {}),
        (404, "GET", f"/api/v1/traces/{new_trace_id()}", {}),
        (404, "GET", "/nowhere", {}),
        (405, "PUT", "/v1/traces", {}),
        (200, "POST", "/v1/traces", {"content": spans}),
    ]
    async with _one_connection(collector.url, **auth, **{"content-type": PROTOBUF}) as http:
        ports = set()
        for status, method, path, options in requests:
            response = await http.request(method, path, **options)
            assert response.status_code == status, (path, response.text)
            ports.add(_client_port(response))
        assert len(ports) == 1, "an error answer closed the connection"


@pytest.fixture
async def failing_server() -> AsyncIterator[str]:
    """uvicorn with the collector's protocol and Failsafe around an app with a bug in it."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        if scope["path"] == "/bug":
            raise RuntimeError("a bug")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"fine"})

    limits = ConnectionLimits(max_connections=100, header_read_timeout_s=5, body_read_timeout_s=5)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            Failsafe(app),
            host="127.0.0.1",
            port=port,
            http=protocol_class(limits),
            lifespan="off",
            log_config=None,
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_a_bug_answers_500_and_keeps_the_connection(
    failing_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with _one_connection(failing_server) as http:
        broken = await http.get("/bug")
        assert broken.status_code == 500
        assert broken.json() == {"error": {"code": "internal", "message": "internal error"}}
        assert "connection" not in broken.headers
        fine = await http.get("/fine")
        assert fine.status_code == 200
        assert _client_port(broken) == _client_port(fine)
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.getMessage() for record in logged] == ["unhandled error"]
    assert logged[0].exc_info is not None  # a bug keeps its traceback, once
