"""Cursors keep PostgreSQL's microsecond: items a few microseconds apart page exactly."""

from __future__ import annotations

import os
from datetime import timedelta

import httpx
import pytest
from query.query_kit import (
    Log,
    Span,
    base_time,
    page_through,
    rfc3339,
    send_logs,
    send_spans,
)

# Offsets in microseconds: five inside one millisecond, one just past it, so page borders
# (limit 2) fall between items that only their microseconds tell apart.
OFFSETS_US = [0, 1, 250, 500, 999, 1001]


@pytest.mark.parametrize("path", ["native", "otlp-protobuf"])
async def test_trace_cursor_keeps_microseconds(client: httpx.AsyncClient, path: str) -> None:
    base = base_time(minutes_ago=20)
    roots = [
        Span(os.urandom(16).hex(), f"{index + 1:016x}", f"us-{path}", "root",
             base + timedelta(microseconds=offset), 1.0)
        for index, offset in enumerate(OFFSETS_US)
    ]  # fmt: skip
    await send_spans(client, roots, path)
    pages = await page_through(
        client, "/api/v1/traces", "traces", {"service": f"us-{path}", "limit": 2}
    )
    listed = [item["trace_id"] for page in pages for item in page]
    assert listed == [root.trace_id for root in reversed(roots)]
    starts = [item["start_time"] for page in pages for item in page]
    assert starts == [rfc3339(root.start) for root in reversed(roots)]


@pytest.mark.parametrize("path", ["native", "otlp-json"])
async def test_log_cursor_keeps_microseconds(client: httpx.AsyncClient, path: str) -> None:
    base = base_time(minutes_ago=20)
    records = [
        Log(f"us-{index}", f"us-{path}", base + timedelta(microseconds=offset), "tick")
        for index, offset in enumerate(OFFSETS_US)
    ]
    # One record per request, oldest first: the sequence tie-breaker then agrees with time,
    # so only a lost microsecond can reorder, skip or repeat an item.
    for record in records:
        await send_logs(client, [record], path)
    pages = await page_through(
        client, "/api/v1/logs", "logs", {"service": f"us-{path}", "limit": 2}
    )
    listed = [item["attributes"]["test.key"] for page in pages for item in page]
    assert listed == [record.key for record in reversed(records)]
