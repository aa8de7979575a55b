"""Keyset paging while data keeps arriving: no trace or log is skipped or repeated."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from query.query_kit import Log, Span, base_time, get_ok, send_logs, send_spans


class Poster:
    """Keeps posting batches from another task until stopped; counts what it sent."""

    def __init__(self, post_batch: Callable[[int], Awaitable[None]]) -> None:
        self.post_batch = post_batch
        self.batches = 0
        self.stopped = False

    async def run(self) -> None:
        while not self.stopped:
            await self.post_batch(self.batches)
            self.batches += 1

    async def wait_beyond(self, seen: int) -> int:
        """Until at least one more batch than `seen` is committed (so ingest interleaves)."""
        for _ in range(2000):
            if self.batches > seen:
                return self.batches
            await asyncio.sleep(0.005)
        raise AssertionError("the poster made no progress")


async def page_while_posting(
    client: httpx.AsyncClient, path: str, items: str, limit: int, poster: Poster
) -> list[list[dict[str, Any]]]:
    # Paging starts with the first page; only then does the other task start posting.
    first = await get_ok(client, path, {"limit": limit})
    pages: list[list[dict[str, Any]]] = [first[items]]
    cursor = first["next_cursor"]
    task = asyncio.create_task(poster.run())
    try:
        seen = 0
        while cursor is not None:
            seen = await poster.wait_beyond(seen)
            answer = await get_ok(client, path, {"limit": limit, "cursor": cursor})
            pages.append(answer[items])
            cursor = answer["next_cursor"]
    finally:
        poster.stopped = True
        await task
    assert poster.batches >= len(pages) - 1 > 3
    return pages


def trace(start: datetime, number: int, service: str = "svc") -> list[Span]:
    trace_id = os.urandom(16).hex()
    root = Span(trace_id, f"{number + 1:016x}", service, "root", start, 100)
    child = Span(
        trace_id, f"{number + 10**6:016x}", service, "child", start + timedelta(milliseconds=10),
        50, parent=root.span_id,
    )  # fmt: skip
    return [root, child]


async def test_trace_pages_under_concurrent_ingest(client: httpx.AsyncClient) -> None:
    base = base_time(minutes_ago=50)
    initial: list[Span] = []
    for number in range(47):
        # Pairs share a root start: the trace-id tie-breaker meets page borders.
        initial += trace(base + timedelta(seconds=(number // 2) * 30), number)
    for part, path in enumerate(("native", "otlp-json", "otlp-protobuf")):
        await send_spans(client, _part(initial, part), path)
    existing = [span.trace_id for span in initial if span.parent is None]

    async def post_batch(batch: int) -> None:
        # A new trace now, and one more span for an existing trace (its position stays).
        spans = trace(datetime.now(UTC), 10**7 + batch, service="late")
        old = initial[2 * (batch % len(existing))]
        spans.append(
            Span(old.trace_id, f"{10**8 + batch:016x}", "late", "extra",
                 old.start + timedelta(milliseconds=20), 5, parent=old.span_id, status="error")
        )  # fmt: skip
        await send_spans(client, spans, "native")

    poster = Poster(post_batch)
    pages = await page_while_posting(client, "/api/v1/traces", "traces", 5, poster)
    listed = [item["trace_id"] for page in pages for item in page]
    assert len(listed) == len(set(listed)), "a trace was repeated"
    assert set(listed) == set(existing), "a trace was skipped or one appeared that was not there"
    starts = [item["start_time"] for page in pages for item in page]
    assert starts == sorted(starts, reverse=True)
    # The traces posted meanwhile are on a new first page.
    fresh = await get_ok(client, "/api/v1/traces", {"limit": 100, "service": "late"})
    assert len(fresh["traces"]) >= poster.batches


def _part(spans: list[Span], part: int) -> list[Span]:
    # Whole traces (root + child) per ingest path.
    traces = [spans[index : index + 2] for index in range(0, len(spans), 2)]
    return [span for pair in traces[part::3] for span in pair]


async def test_log_pages_under_concurrent_ingest(client: httpx.AsyncClient) -> None:
    base = base_time(minutes_ago=50)
    initial = [
        # Triples share a timestamp: the id tie-breaker meets page borders.
        Log(f"log-{number}", "svc", base + timedelta(seconds=number // 3), f"message {number}")
        for number in range(61)
    ]
    await send_logs(client, initial[:20], "native")
    await send_logs(client, initial[20:40], "otlp-json")
    await send_logs(client, initial[40:], "otlp-protobuf")

    async def post_batch(batch: int) -> None:
        now = datetime.now(UTC)
        fresh = [Log(f"late-{batch}-{n}", "late", now, "late message") for n in range(3)]
        await send_logs(client, fresh, "native")

    poster = Poster(post_batch)
    pages = await page_while_posting(client, "/api/v1/logs", "logs", 7, poster)
    listed = [item["attributes"]["test.key"] for page in pages for item in page]
    assert len(listed) == len(set(listed)), "a log was repeated"
    assert set(listed) == {log.key for log in initial}
    times = [item["time"] for page in pages for item in page]
    assert times == sorted(times, reverse=True)
