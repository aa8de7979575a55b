"""Native ingest under the same limits as OTLP: 413 (body, inflated body), 415, and 429 when
the writer is saturated (503 during an outage is in test_database_outage.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from otlp_testkit import chunks, gzip_bomb, gzip_bytes, new_span_id, now_ns, span_counts
from support import Collector

BODY_LIMIT = 256 * 1024
DECOMPRESSED_LIMIT = 1024 * 1024
QUEUED_ROWS = 600
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def limited(database_url: str, logs_dir: Path) -> Iterator[Collector]:
    """One collector with small body limits and a small writer queue for this module."""
    running = Collector(
        database_url,
        env={
            "TELEMETRY_MAX_BODY_BYTES": str(BODY_LIMIT),
            "TELEMETRY_MAX_DECOMPRESSED_BYTES": str(DECOMPRESSED_LIMIT),
            "TELEMETRY_WRITER_MAX_QUEUED_ROWS": str(QUEUED_ROWS),
        },
    ).start(logs_dir)
    yield running
    running.stop()


@pytest.fixture
async def http(limited: Collector, key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=limited.url, headers={"x-api-key": key}, timeout=60
    ) as client:
        yield client


def _spans(count: int, trace_id: str | None = None, padding: int = 0) -> dict[str, Any]:
    trace_id = trace_id or uuid.uuid4().hex
    start = now_ns() / 1e9 - 30
    return {
        "spans": [
            {
                "trace_id": trace_id,
                "span_id": new_span_id(),
                "name": "step",
                "service": "native-limits",
                "start_time": start,
                "duration_ms": 1,
                "attributes": {"padding": "x" * padding} if padding else {},
            }
            for _ in range(count)
        ]
    }


def _body(document: dict[str, Any]) -> bytes:
    return httpx.Request("POST", "/", json=document).content


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]["message"]


async def _aiter(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.parametrize("path", ["spans", "logs", "metrics", "errors"])
async def test_body_over_the_limit_is_413(http: httpx.AsyncClient, path: str) -> None:
    too_big = b'{"' + path.encode() + b'": [], "padding": "' + b"x" * BODY_LIMIT + b'"}'
    response = await http.post(f"/api/v1/ingest/{path}", content=too_big, headers=JSON)
    assert str(BODY_LIMIT) in _error(response, 413, "payload_too_large")
    # Without Content-Length: cut off while streaming.
    response = await http.post(
        f"/api/v1/ingest/{path}", content=_aiter(chunks(too_big, 16384)), headers=JSON
    )
    assert "content-length" not in response.request.headers
    assert str(BODY_LIMIT) in _error(response, 413, "payload_too_large")


async def test_inflated_body_over_the_limit_is_413(http: httpx.AsyncClient) -> None:
    fits = _body(_spans(1, padding=DECOMPRESSED_LIMIT - 4096))
    inflated = _body(_spans(1, padding=DECOMPRESSED_LIMIT + 1024))
    gzip = {**JSON, "content-encoding": "gzip"}
    response = await http.post("/api/v1/ingest/spans", content=gzip_bytes(fits), headers=gzip)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    response = await http.post("/api/v1/ingest/spans", content=gzip_bytes(inflated), headers=gzip)
    message = _error(response, 413, "payload_too_large")
    assert "decompresses" in message and str(DECOMPRESSED_LIMIT) in message
    bomb = gzip_bomb(50 * 1000 * 1000)  # 50 MB of zeros in well under the body limit
    assert len(bomb) < BODY_LIMIT
    response = await http.post("/api/v1/ingest/errors", content=bomb, headers=gzip)
    assert "decompresses" in _error(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-protobuf"},
        {"content-type": "application/json", "content-encoding": "br"},
        {},
    ],
    ids=["text", "protobuf", "brotli", "none"],
)
async def test_unsupported_media_is_415(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.post("/api/v1/ingest/spans", content=_body(_spans(1)), headers=headers)
    _error(response, 415, "unsupported_media_type")


async def test_saturated_writer_answers_429_and_stores_nothing_it_refused(
    http: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    answers: dict[str, httpx.Response] = {}
    gzip = {**JSON, "content-encoding": "gzip"}

    async def send() -> None:
        trace_id = uuid.uuid4().hex
        body = gzip_bytes(_body(_spans(500, trace_id)))
        answers[trace_id] = await http.post("/api/v1/ingest/spans", content=body, headers=gzip)

    # Concurrent 500-span requests against a 600-row queue: those that find it full are
    # refused at once, not buffered.
    for _ in range(10):
        await asyncio.gather(*(send() for _ in range(8)))
        if any(answer.status_code == 429 for answer in answers.values()):
            break
    refused = {trace for trace, answer in answers.items() if answer.status_code == 429}
    accepted = {trace for trace, answer in answers.items() if answer.status_code == 200}
    assert refused, "no request was refused; the queue bound did not apply"
    assert accepted and refused | accepted == set(answers)
    for trace in refused:
        answer = answers[trace]
        assert answer.headers["retry-after"] == "5"
        assert "saturated" in _error(answer, 429, "too_many_requests")
    stored = await span_counts(db, answers)
    assert stored == dict.fromkeys(accepted, 500)
