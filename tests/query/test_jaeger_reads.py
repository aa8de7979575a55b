"""Service-to-service call counts and operations with their kinds, read straight from the
query functions (the API tests pin the answers built from them)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import httpx
from otlp_testkit import SpanSpec, traces_json
from otlp_testkit import project_id as project_of
from query.query_kit import Span, base_time, nanos, send_spans
from sqlalchemy.ext.asyncio import AsyncEngine

from app.query.jaeger_reads import PARENT_SLACK, dependency_links, operations_with_kinds

T1, T2, T3 = "d1" * 16, "d2" * 16, "d3" * 16


async def test_calls_between_services(
    client: httpx.AsyncClient, engine: AsyncEngine, db: asyncpg.Connection, project_name: str
) -> None:
    base = base_time(30)
    spans = [
        # gateway → assistant → tools, and assistant → assistant (not a dependency).
        Span(T1, "1000000000000001", "gateway", "POST /chat", base, 900),
        Span(T1, "1000000000000002", "assistant", "turn", base, 800, parent="1000000000000001"),
        Span(T1, "1000000000000003", "assistant", "chat", base, 300, parent="1000000000000002"),
        Span(T1, "1000000000000004", "tools", "search", base, 100, parent="1000000000000003"),
        Span(T1, "1000000000000005", "tools", "fetch", base, 100, parent="1000000000000003"),
        # A child whose parent was never stored adds nothing.
        Span(T2, "2000000000000002", "tools", "orphan", base, 100, parent="20000000000000ff"),
        # A parent that started long before the window is not looked for.
        Span(T3, "3000000000000001", "scheduler", "nightly", base - 3 * PARENT_SLACK, 9),
        Span(T3, "3000000000000002", "tools", "late", base, 100, parent="3000000000000001"),
    ]
    await send_spans(client, spans, "otlp-json")
    project_id = await project_of(db, project_name)
    window = {"start": base - timedelta(minutes=1), "end": base + timedelta(minutes=1)}
    assert await dependency_links(engine, project_id, **window) == [
        ("assistant", "tools", 2),
        ("gateway", "assistant", 1),
    ]
    assert await dependency_links(engine, project_id, **window, service="gateway") == [
        ("gateway", "assistant", 1)
    ]
    wide = {"start": base - 4 * PARENT_SLACK, "end": base + timedelta(minutes=1)}
    assert ("scheduler", "tools", 1) in await dependency_links(engine, project_id, **wide)
    # Children are counted by their own start: a window before them counts nothing.
    before = {"start": base - timedelta(minutes=10), "end": base - timedelta(minutes=5)}
    assert await dependency_links(engine, project_id, **before) == []


async def test_operations_with_their_kinds(
    client: httpx.AsyncClient, engine: AsyncEngine, db: asyncpg.Connection, project_name: str
) -> None:
    start_ns = nanos(base_time(10))
    trace = "e1" * 16
    spans = [
        SpanSpec(trace, "e100000000000001", "GET /x", start_ns, start_ns + 9, kind=2),
        SpanSpec(trace, "e100000000000002", "GET /x", start_ns, start_ns + 9, kind=3),
        SpanSpec(trace, "e100000000000003", "query", start_ns, start_ns + 9, kind=0),
        SpanSpec(trace, "e100000000000004", "query", start_ns, start_ns + 9, kind=1),
    ]
    response = await client.post("/v1/traces", json=traces_json(spans, service="svc"))
    assert response.status_code == 200, response.text
    project_id = await project_of(db, project_name)
    now = base_time(5)
    # An unspecified kind reads as internal: both `query` spans are one operation.
    assert await operations_with_kinds(engine, project_id, "svc", None, now) == [
        ("GET /x", "server"),
        ("GET /x", "client"),
        ("query", "internal"),
    ]
    assert await operations_with_kinds(engine, project_id, "svc", "client", now) == [
        ("GET /x", "client")
    ]
    assert await operations_with_kinds(engine, project_id, "svc", "internal", now) == [
        ("query", "internal")
    ]
    assert await operations_with_kinds(engine, project_id, "nobody", None, now) == []
