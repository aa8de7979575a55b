"""Trace search and services on a fixed dataset sent through all three ingest paths."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from query.query_kit import (
    Span,
    base_time,
    get_ok,
    new_project_client,
    page_through,
    rfc3339,
    send_spans,
    trace_ids,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

T1, T2, T3 = "10" * 16, "20" * 16, "30" * 16
T4, T5 = "a4" * 16, "a5" * 16  # roots start at the same instant: trace id breaks the tie
T6 = "60" * 16  # no root stored
T7 = "70" * 16  # two parentless spans
T8 = "80" * 16  # root three hours back, outside the default window
NEWEST_FIRST = [T7, T5, T4, T3, T2, T1]


@dataclass
class Dataset:
    client: httpx.AsyncClient
    base: datetime


def spans_at(base: datetime) -> dict[str, list[Span]]:
    def at(seconds: float) -> datetime:
        return base + timedelta(seconds=seconds)

    return {
        "otlp-protobuf": [
            Span(T1, "1000000000000001", "gateway", "POST /chat", at(0), 900, status="ok",
                 attributes={"http.status_code": 200, "http.route": "/chat"}),
            Span(T1, "1000000000000002", "assistant", "chat gpt-4o", at(0.05), 700,
                 parent="1000000000000001",
                 attributes={"gen_ai.request.model": "gpt-4o", "cache.hit": True,
                             "temperature": 0.5}),
            Span(T1, "1000000000000003", "tools", "execute_tool run_tests", at(0.1), 300,
                 parent="1000000000000002", status="error", attributes={"tool": "run_tests"}),
        ],
        "otlp-json": [
            Span(T2, "2000000000000001", "assistant", "agent.run", at(60), 2500),
            Span(T2, "2000000000000002", "assistant", "chat claude", at(60.1), 2000,
                 parent="2000000000000001", status="error",
                 attributes={"gen_ai.request.model": "claude-sonnet", "http.status_code": 500,
                             "cache.hit": False}),
            Span(T2, "2000000000000003", "tools", "execute_tool search", at(60.2), 50,
                 parent="2000000000000001",
                 attributes={"tool": "search", "http.status_code": "200"}),
        ],
        "native": [
            Span(T3, "3000000000000001", "gateway", "GET /health", at(120), 5, status="ok",
                 attributes={"http.status_code": 200}),
            Span(T4, "4000000000000001", "assistant", "agent.run", at(180), 1200),
            Span(T5, "5000000000000001", "assistant", "agent.run", at(180), 1300),
            Span(T5, "5000000000000002", "tools", "execute_tool run_tests", at(180.1), 1000,
                 parent="5000000000000001", status="error",
                 attributes={"tool": "run_tests", "attempt": 2}),
            Span(T6, "6000000000000001", "orphan", "late.child", at(200), 40,
                 parent="60000000000000ff"),
            Span(T6, "6000000000000002", "orphan", "late.child", at(200.01), 20,
                 parent="6000000000000001"),
            Span(T7, "7000000000000001", "worker", "batch.a", at(240), 100),
            Span(T7, "7000000000000002", "worker", "batch.b", at(250), 100),
            Span(T8, "8000000000000001", "gateway", "POST /chat", base - timedelta(hours=3), 80,
                 status="ok", attributes={"http.status_code": 200}),
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
async def data(collector: Collector, engine: AsyncEngine) -> AsyncIterator[Dataset]:
    base = base_time(minutes_ago=40)
    async with await new_project_client(collector, engine) as client:
        for path, spans in spans_at(base).items():
            await send_spans(client, spans, path)
        yield Dataset(client, base)


async def test_newest_first_with_exact_summaries(data: Dataset) -> None:
    answer = await get_ok(data.client, "/api/v1/traces")
    assert [item["trace_id"] for item in answer["traces"]] == NEWEST_FIRST
    assert answer["next_cursor"] is None
    by_id = {item["trace_id"]: item for item in answer["traces"]}
    assert by_id[T1] == {
        "trace_id": T1,
        "root_service": "gateway",
        "root_name": "POST /chat",
        "start_time": rfc3339(data.base),
        "duration_ms": 900.0,
        "span_count": 3,
        "error_count": 1,
    }
    assert by_id[T2]["span_count"] == 3 and by_id[T2]["duration_ms"] == 2500.0
    assert by_id[T5]["error_count"] == 1 and by_id[T5]["duration_ms"] == 1300.0
    # Listed once, at its earliest root; the summary covers both roots.
    assert by_id[T7]["root_name"] == "batch.a"
    assert by_id[T7]["start_time"] == rfc3339(data.base + timedelta(seconds=240))
    assert by_id[T7]["duration_ms"] == 10100.0 and by_id[T7]["span_count"] == 2


async def test_summary_agrees_with_the_trace_itself(data: Dataset) -> None:
    listed = (await get_ok(data.client, "/api/v1/traces"))["traces"]
    for summary in listed:
        full = await get_ok(data.client, f"/api/v1/traces/{summary['trace_id']}")
        assert {key: full[key] for key in summary} == summary


async def test_a_trace_without_root_is_readable_but_not_listed(data: Dataset) -> None:
    trace = await get_ok(data.client, f"/api/v1/traces/{T6}")
    assert trace["span_count"] == 2 and trace["root_name"] == "late.child"
    assert T6 not in await trace_ids(data.client, {"service": "orphan"})


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"service": "gateway"}, [T3, T1]),
        ({"service": "tools"}, [T5, T2, T1]),
        ({"service": "worker"}, [T7]),
        ({"service": "nobody"}, []),
        ({"name": "agent.run"}, [T5, T4, T2]),
        ({"name": "execute_tool run_tests"}, [T5, T1]),
        ({"status": "error"}, [T5, T2, T1]),
        ({"status": "ok"}, [T3, T1]),
        ({"status": "unset"}, [T7, T5, T4, T2, T1]),
        ({"min_duration_ms": "1000"}, [T5, T4, T2]),
        ({"max_duration_ms": "10"}, [T3]),
        ({"min_duration_ms": "1000", "max_duration_ms": "1250"}, [T5, T4]),
        ({"min_duration_ms": "1200.5"}, [T5, T2]),
        ({"min_duration_ms": "1e300"}, []),
        ({"max_duration_ms": "1e300"}, NEWEST_FIRST),
        ({"min_duration_ms": "0", "max_duration_ms": "0.000001"}, []),
        # NUL cannot be stored, so ingest strips it; a filter is read the same way.
        ({"service": "gate\x00way"}, [T3, T1]),
        ({"service": "\x00"}, NEWEST_FIRST),
        # One span must match every filter: T1's error is in `tools`, not `assistant`.
        ({"service": "assistant", "status": "error"}, [T2]),
        ({"service": "tools", "min_duration_ms": "500"}, [T5]),
        ({"service": "gateway", "name": "POST /chat", "status": "ok"}, [T1]),
    ],
)
async def test_span_filters(data: Dataset, params: dict[str, str], expected: list[str]) -> None:
    assert await trace_ids(data.client, params) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # The int 200 (T1, T3) and the string "200" (T2) both match.
        ([("attr.http.status_code", "200")], [T3, T2, T1]),
        ([("attr.http.status_code", "500")], [T2]),
        ([("attr.cache.hit", "true")], [T1]),
        ([("attr.cache.hit", "false")], [T2]),
        ([("attr.temperature", "0.5")], [T1]),
        ([("attr.gen_ai.request.model", "gpt-4o")], [T1]),
        ([("attr.tool", "run_tests")], [T5, T1]),
        ([("attr.tool", "run_tests"), ("attr.attempt", "2")], [T5]),
        ([("attr.tool", "run_tests"), ("service", "tools"), ("status", "error")], [T5, T1]),
        # On different spans of T1: no single span has both.
        ([("attr.gen_ai.request.model", "gpt-4o"), ("attr.tool", "run_tests")], []),
        ([("attr.tool", "search"), ("attr.tool", "run_tests")], []),
        ([("attr.http.status_code", "0200")], []),
        ([("attr.nothing", "x")], []),
        ([("attr.to\x00ol", "run_\x00tests")], [T5, T1]),
        # Text that looks like SQL or JSON is just a value to compare.
        ([("attr.tool", "x' OR '1'='1")], []),
        ([('attr.a"}', '{"b": 1}')], []),
    ],
)
async def test_attribute_filters(
    data: Dataset, params: list[tuple[str, str]], expected: list[str]
) -> None:
    assert await trace_ids(data.client, params) == expected


async def test_time_window(data: Dataset) -> None:
    base = data.base
    wide = {"start": rfc3339(base - timedelta(hours=4))}
    assert await trace_ids(data.client, wide) == [*NEWEST_FIRST, T8]
    assert await trace_ids(data.client, {**wide, "service": "gateway"}) == [T3, T1, T8]
    window = {
        "start": rfc3339(base + timedelta(seconds=100)),
        "end": str((base + timedelta(seconds=200)).timestamp()),
    }
    assert await trace_ids(data.client, window) == [T5, T4, T3]
    # The matching span must start in the window too: T5's root does, its tools span not.
    narrow = {
        "start": rfc3339(base + timedelta(seconds=170)),
        "end": rfc3339(base + timedelta(seconds=180.05)),
    }
    assert await trace_ids(data.client, narrow) == [T5, T4]
    assert await trace_ids(data.client, {**narrow, "service": "tools"}) == []
    assert await trace_ids(data.client, {**narrow, "end": rfc3339(base + timedelta(seconds=181)),
                                         "service": "tools"}) == [T5]  # fmt: skip
    assert await trace_ids(data.client, {"start": "now-5m"}) == []


async def test_paging_walks_every_trace_once(data: Dataset) -> None:
    pages = await page_through(data.client, "/api/v1/traces", "traces", {"limit": 2})
    assert [[item["trace_id"] for item in page] for page in pages] == [
        [T7, T5],
        [T4, T3],
        [T2, T1],
    ]
    pages = await page_through(data.client, "/api/v1/traces", "traces", {"limit": 4})
    assert [len(page) for page in pages] == [4, 2]
    filtered = await page_through(
        data.client, "/api/v1/traces", "traces", {"limit": 1, "status": "error"}
    )
    assert [item["trace_id"] for page in filtered for item in page] == [T5, T2, T1]


async def test_cursor_keeps_the_first_pages_window(data: Dataset) -> None:
    first = await get_ok(data.client, "/api/v1/traces", {"limit": 3})
    # A later `start` with the cursor does not cut T2 and T1 off: the window is pinned.
    later = rfc3339(data.base + timedelta(seconds=150))
    rest = await get_ok(
        data.client, "/api/v1/traces", {"limit": 3, "cursor": first["next_cursor"], "start": later}
    )
    assert [item["trace_id"] for item in rest["traces"]] == [T3, T2, T1]


async def test_services_with_operations(data: Dataset) -> None:
    answer = await get_ok(data.client, "/api/v1/services")
    services = answer["services"]
    assert [(item["name"], item["span_count"], item["operations"]) for item in services] == [
        ("assistant", 5, ["agent.run", "chat claude", "chat gpt-4o"]),
        ("gateway", 2, ["GET /health", "POST /chat"]),
        ("orphan", 2, ["late.child"]),
        ("tools", 3, ["execute_tool run_tests", "execute_tool search"]),
        ("worker", 2, ["batch.a", "batch.b"]),
    ]
    tools = services[3]
    assert tools["error_count"] == 2
    assert tools["operation_stats"] == [
        {"name": "execute_tool run_tests", "span_count": 2, "error_count": 2},
        {"name": "execute_tool search", "span_count": 1, "error_count": 0},
    ]
    wide = await get_ok(
        data.client, "/api/v1/services", {"start": rfc3339(data.base - timedelta(hours=4))}
    )
    assert [item["span_count"] for item in wide["services"] if item["name"] == "gateway"] == [3]
    narrow = await get_ok(
        data.client,
        "/api/v1/services",
        {
            "start": rfc3339(data.base + timedelta(seconds=239)),
            "end": rfc3339(data.base + timedelta(seconds=245)),
        },
    )
    worker = services[4]
    assert narrow["services"] == [
        {
            **worker,
            "span_count": 1,
            "operations": ["batch.a"],
            "operation_stats": [worker["operation_stats"][0]],
        }
    ]


async def test_another_project_sees_none_of_it(data: Dataset, other_client: Any) -> None:
    wide = {"start": rfc3339(data.base - timedelta(hours=4))}
    assert await get_ok(other_client, "/api/v1/traces", wide) == {"traces": [], "next_cursor": None}
    assert await get_ok(other_client, "/api/v1/services", wide) == {"services": []}
    response = await other_client.get(f"/api/v1/traces/{T1}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    # Nor can it page on with this project's cursor into this project's data.
    first = await get_ok(data.client, "/api/v1/traces", {"limit": 1})
    follow = await get_ok(
        other_client, "/api/v1/traces", {"limit": 1, "cursor": first["next_cursor"]}
    )
    assert follow["traces"] == []
