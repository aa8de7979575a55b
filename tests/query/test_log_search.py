"""GET /api/v1/logs on a fixed dataset sent through OTLP JSON, OTLP protobuf and the native API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from query.query_kit import (
    Log,
    base_time,
    get_ok,
    log_keys,
    new_project_client,
    page_through,
    rfc3339,
    send_logs,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

TRACE_A, TRACE_B = "ab" * 16, "cd" * 16
SPAN_A = "ef" * 8
# Newest first; L6/L7 and the ticks share a timestamp (ties: the later-stored comes first).
IN_WINDOW = ["tick3", "tick2", "tick1", "L9", "L8", "L7", "L6", "L5", "L4", "L3", "L2", "L1"]


@dataclass
class Dataset:
    client: httpx.AsyncClient
    base: datetime


def logs_at(base: datetime) -> dict[str, list[Log]]:
    def at(seconds: float) -> datetime:
        return base + timedelta(seconds=seconds)

    return {
        "otlp-json": [
            Log("L1", "assistant", at(0), "user asked about the weather in Paris",
                trace_id=TRACE_A, span_id=SPAN_A, attributes={"session.id": "s-1", "turn": 1}),
            Log("L2", "assistant", at(1), "rate limit exceeded, retrying request",
                severity_number=13, severity_text="WARN",
                attributes={"retry": True, "attempt": 2}),
            Log("L3", "assistant", at(2), "tool run_tests failed: timeout after 30s",
                severity_number=17, severity_text="ERROR", trace_id=TRACE_B,
                attributes={"tool": "run_tests"}),
            # No severity number, only a text: ranks as error.
            Log("L4", "assistant", at(3), "upstream connection reset",
                severity_number=0, severity_text="ERROR"),
        ],
        "otlp-protobuf": [
            Log("L5", "gateway", at(4), "cache miss for prompt", severity_number=5,
                severity_text="DEBUG", attributes={"cache.hit": False}),
            Log("L6", "gateway", at(5), "out of memory, shutting down", severity_number=21,
                severity_text="FATAL", attributes={"http.status_code": 503}),
            Log("L7", "gateway", at(5), "request completed", trace_id=TRACE_A,
                attributes={"http.status_code": 200}),
        ],
        "native": [
            Log("L8", "tools", at(6), "weather tool returned sunny in Paris", trace_id=TRACE_A,
                attributes={"tool": "weather", "latency_ms": 12.5}),
            Log("L9", "tools", at(7), "run_tests exceeded the time limit", level="error",
                trace_id=TRACE_B, attributes={"tool": "run_tests"},
                error={"type": "TimeoutError", "message": "timed out"}),
            Log("tick1", "tools", at(8), "tick one", level="debug"),
            Log("tick2", "tools", at(8), "tick two", level="debug"),
            Log("tick3", "tools", at(8), "tick three", level="debug"),
            Log("old", "tools", base - timedelta(hours=3), "ancient weather report"),
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
async def data(collector: Collector, engine: AsyncEngine) -> AsyncIterator[Dataset]:
    base = base_time(minutes_ago=30)
    async with await new_project_client(collector, engine) as client:
        for path, logs in logs_at(base).items():
            await send_logs(client, logs, path)
        yield Dataset(client, base)


async def test_newest_first_with_every_field(data: Dataset) -> None:
    answer = await get_ok(data.client, "/api/v1/logs")
    assert [item["attributes"]["test.key"] for item in answer["logs"]] == IN_WINDOW
    assert answer["next_cursor"] is None
    by_key = {item["attributes"]["test.key"]: item for item in answer["logs"]}
    first = by_key["L1"]
    assert first == {
        **first,
        "time": rfc3339(data.base),
        "level": "info",
        "severity_number": 9,
        "severity_text": "INFO",
        "body": "user asked about the weather in Paris",
        "service": "assistant",
        "attributes": {"session.id": "s-1", "turn": 1, "test.key": "L1"},
        "trace_id": TRACE_A,
        "span_id": SPAN_A,
        "event_name": "",
        "trace": f"/api/v1/traces/{TRACE_A}",
    }
    assert first["resource"]["service.name"] == "assistant"
    assert first["observed_time"] is None
    assert "search_text" not in first
    assert by_key["L2"]["trace"] is None and by_key["L2"]["trace_id"] is None
    assert by_key["L4"]["level"] == "error" and by_key["L4"]["severity_number"] == 0
    assert by_key["L9"]["attributes"]["exception.type"] == "TimeoutError"
    assert by_key["L9"]["level"] == "error" and by_key["L9"]["severity_number"] == 17


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("weather", ["L8", "L1"]),
        ("Paris weather", ["L8", "L1"]),  # several words: all must occur, in any order
        ('"weather in paris"', ["L1"]),  # a phrase: in this order
        ('"sunny in paris"', ["L8"]),
        ('"paris in weather"', []),
        ("run_tests", ["L9", "L3"]),
        ("timeout", ["L3"]),  # simple config: no stemming, "TimeoutError" is another word
        ("timed out", ["L9"]),  # from the exception message attribute
        ("retrying -limit", []),
        ("retrying or paris", ["L8", "L2", "L1"]),
        ("tick", ["tick3", "tick2", "tick1"]),
        ("nothing-like-this", []),
        ("   ", IN_WINDOW),
        ("wea\x00ther", ["L8", "L1"]),
        ("'); DROP TABLE logs; --", []),
    ],
)
async def test_full_text(data: Dataset, q: str, expected: list[str]) -> None:
    assert await log_keys(data.client, {"q": q}) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"level": "trace"}, IN_WINDOW),
        ({"level": "debug"}, IN_WINDOW),
        ({"level": "info"}, ["L9", "L8", "L7", "L6", "L4", "L3", "L2", "L1"]),
        ({"level": "warn"}, ["L9", "L6", "L4", "L3", "L2"]),
        ({"level": "error"}, ["L9", "L6", "L4", "L3"]),
        ({"level": "ERROR"}, ["L9", "L6", "L4", "L3"]),
        ({"level": "fatal"}, ["L6"]),
        ({"service": "gateway"}, ["L7", "L6", "L5"]),
        ({"service": "none"}, []),
        ({"trace_id": TRACE_A}, ["L8", "L7", "L1"]),
        ({"trace_id": TRACE_B.upper()}, ["L9", "L3"]),
        ({"trace_id": "ee" * 16}, []),
        ({"attr.tool": "run_tests"}, ["L9", "L3"]),
        ({"attr.http.status_code": "503"}, ["L6"]),
        ({"attr.cache.hit": "false"}, ["L5"]),
        ({"attr.retry": "true"}, ["L2"]),
        ({"attr.latency_ms": "12.5"}, ["L8"]),
        ({"attr.turn": "1"}, ["L1"]),
        ({"attr.session.id": "s-1"}, ["L1"]),
        ({"q": "paris", "service": "tools"}, ["L8"]),
        ({"level": "error", "attr.tool": "run_tests"}, ["L9", "L3"]),
        ({"q": "weather", "trace_id": TRACE_A, "level": "warn"}, []),
    ],
)
async def test_filters(data: Dataset, params: dict[str, str], expected: list[str]) -> None:
    assert await log_keys(data.client, params) == expected


async def test_time_window(data: Dataset) -> None:
    base = data.base
    assert await log_keys(data.client, {"start": "now-4h", "q": "weather"}) == ["L8", "L1", "old"]
    window = {
        "start": rfc3339(base + timedelta(seconds=2)),
        "end": rfc3339(base + timedelta(seconds=5)),
    }
    assert await log_keys(data.client, window) == ["L7", "L6", "L5", "L4", "L3"]


async def test_paging_walks_every_log_once(data: Dataset) -> None:
    for limit in (1, 2, 3, 5, 12):
        pages = await page_through(data.client, "/api/v1/logs", "logs", {"limit": limit})
        keys = [item["attributes"]["test.key"] for page in pages for item in page]
        assert keys == IN_WINDOW
        assert all(len(page) == limit for page in pages[:-1])
    pages = await page_through(
        data.client, "/api/v1/logs", "logs", {"limit": 2, "q": "weather", "start": "now-4h"}
    )
    assert [[item["attributes"]["test.key"] for item in page] for page in pages] == [
        ["L8", "L1"],
        ["old"],
    ]


async def test_another_project_sees_none_of_it(data: Dataset, other_client: Any) -> None:
    for params in ({}, {"start": "now-4h"}, {"trace_id": TRACE_A}, {"q": "weather"}):
        assert await get_ok(other_client, "/api/v1/logs", params) == {
            "logs": [],
            "next_cursor": None,
        }
