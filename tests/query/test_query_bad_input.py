"""Bad input to the query API: a 4xx whose JSON message names the parameter and what it takes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from query.query_kit import Log, Span, get_ok, new_project_client, send_logs, send_spans
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector


async def expect_error(
    client: httpx.AsyncClient, path: str, params: object, status: int, *words: str
) -> str:
    response = await client.get(path, params=params)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    for word in words:
        assert word in error["message"], error["message"]
    return error["message"]


async def test_unknown_and_malformed_trace_ids(client: httpx.AsyncClient) -> None:
    missing = "0123456789ABCDEF0123456789abcdef"
    message = await expect_error(client, f"/api/v1/traces/{missing}", None, 404, "no trace")
    assert missing.lower() in message
    for bad in ("xyz", "0123", "0123456789abcdef0123456789abcdeg", "00" * 17):
        await expect_error(client, f"/api/v1/traces/{bad}", None, 400, "trace_id", "32 hex")
    await expect_error(client, "/api/v1/logs", {"trace_id": "nothex"}, 400, "trace_id", "32 hex")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"status": "failed"}, ["status", "unset, ok, error"]),
        ({"min_duration_ms": "fast"}, ["min_duration_ms", "milliseconds"]),
        ({"min_duration_ms": "-5"}, ["min_duration_ms", ">= 0"]),
        ({"max_duration_ms": "1s"}, ["max_duration_ms", "milliseconds"]),
        ({"max_duration_ms": "nan"}, ["max_duration_ms"]),
        ({"min_duration_ms": "20", "max_duration_ms": "10"}, ["min_duration_ms", "max"]),
        ({"start": "yesterday"}, ["start", "RFC 3339"]),
        ({"end": "2026-13-45"}, ["end", "RFC 3339"]),
        ({"start": "now", "end": "now-1h"}, ["start must not be after end"]),
        ({"attr.": "x"}, ["attr.<key>", "empty"]),
        ({f"attr.k{number}": "v" for number in range(21)}, ["at most 20", "got 21"]),
        ({"cursor": "not a cursor"}, ["cursor", "next_cursor"]),
        ({"cursor": base64.urlsafe_b64encode(b'{"v": 1}').decode()}, ["cursor"]),
    ],
)
async def test_bad_trace_search(
    client: httpx.AsyncClient, params: dict[str, str], words: list[str]
) -> None:
    await expect_error(client, "/api/v1/traces", params, 400, *words)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"level": "verbose"}, ["level", "trace, debug, info, warn, error, fatal"]),
        ({"start": "-"}, ["start"]),
        ({"attr.": "1"}, ["attr.<key>"]),
        ({"cursor": "%%%"}, ["cursor"]),
        ({"cursor": "e30"}, ["cursor"]),  # "{}"
    ],
)
async def test_bad_log_search(
    client: httpx.AsyncClient, params: dict[str, str], words: list[str]
) -> None:
    await expect_error(client, "/api/v1/logs", params, 400, *words)


async def test_limits_name_the_maximum(client: httpx.AsyncClient) -> None:
    await expect_error(client, "/api/v1/traces", {"limit": 101}, 400, "limit", "100")
    await expect_error(client, "/api/v1/traces", {"limit": 0}, 400, "limit", "1")
    await expect_error(client, "/api/v1/traces", {"limit": "many"}, 400, "limit")
    await expect_error(client, "/api/v1/logs", {"limit": 1001}, 400, "limit", "1000")
    await get_ok(client, "/api/v1/traces", {"limit": 100})
    await get_ok(client, "/api/v1/logs", {"limit": 1000})
    await expect_error(client, "/api/v1/services", {"start": "soon"}, 400, "start")


async def test_cursors_belong_to_their_search_and_filters(client: httpx.AsyncClient) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    spans = [
        Span(f"{number:032x}", f"{number:016x}", "svc", "op", now + timedelta(seconds=number), 5)
        for number in range(1, 4)
    ]
    await send_spans(client, spans, "native")
    logs = [Log(f"k{number}", "svc", now + timedelta(seconds=number), "hi") for number in range(3)]
    await send_logs(client, logs, "native")
    trace_cursor = (await get_ok(client, "/api/v1/traces", {"limit": 1}))["next_cursor"]
    log_cursor = (await get_ok(client, "/api/v1/logs", {"limit": 1}))["next_cursor"]
    assert trace_cursor and log_cursor
    await expect_error(client, "/api/v1/logs", {"cursor": trace_cursor}, 400, "logs search")
    await expect_error(client, "/api/v1/traces", {"cursor": log_cursor}, 400, "traces search")
    await expect_error(
        client, "/api/v1/traces", {"cursor": trace_cursor, "service": "svc"}, 400, "other filters"
    )
    await expect_error(
        client, "/api/v1/logs", {"cursor": log_cursor, "q": "hi"}, 400, "other filters"
    )
    # Tampered: a position that is not a trace id, or a time out of range.
    document = json.loads(base64.urlsafe_b64decode(trace_cursor + "=" * (-len(trace_cursor) % 4)))
    for position in (["x", "zz"], [10**20, "00" * 16], [1, "00" * 15]):
        forged = base64.urlsafe_b64encode(json.dumps({**document, "p": position}).encode())
        await expect_error(client, "/api/v1/traces", {"cursor": forged.decode()}, 400, "cursor")
    await expect_error(client, "/api/v1/traces", {"cursor": "A" * 5000}, 400, "cursor", "long")
    # Unchanged, with the same filters, it works.
    page = await get_ok(client, "/api/v1/traces", {"limit": 1, "cursor": trace_cursor})
    assert [item["trace_id"] for item in page["traces"]] == [f"{2:032x}"]


async def test_reading_needs_a_read_key(collector: Collector, engine: AsyncEngine) -> None:
    paths = ("/api/v1/traces", "/api/v1/logs", "/api/v1/services", f"/api/v1/traces/{'1' * 32}")
    async with httpx.AsyncClient(base_url=collector.url, timeout=30) as anonymous:
        for path in paths:
            await expect_error(anonymous, path, None, 401, "API key")
    async with await new_project_client(collector, engine, "ingest") as ingest_only:
        for path in paths:
            await expect_error(ingest_only, path, None, 403, "read")
