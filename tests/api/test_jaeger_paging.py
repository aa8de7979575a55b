"""Paging through Jaeger search results as Grafana and the Jaeger UI do: there is no cursor,
so a client asks for `limit` traces in its time range, then moves the range's end to just
before the oldest trace it got. Every trace is seen once, newest first."""

from __future__ import annotations

from typing import Any

import httpx
from api.jaeger_kit import MINUTE_US, agent_trace, now_us, send_otlp
from otlp_testkit import SpanSpec, traces_json

TRACES = [f"{n:02x}" * 16 for n in range(1, 8)]  # 0101…, 0202…, …: oldest first


async def _page(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/api/traces", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _start(trace: dict[str, Any]) -> int:
    """The trace's start as Grafana reads it: its earliest span's start."""
    return min(span["startTime"] for span in trace["spans"])


async def test_moving_the_window_end_pages_through_every_trace_once(
    client: httpx.AsyncClient,
) -> None:
    base = now_us() - 50 * MINUTE_US
    for index, trace_id in enumerate(TRACES):
        await send_otlp(client, agent_trace(trace_id, (base + index * MINUTE_US) * 1000))
    start, end = base - MINUTE_US, now_us()
    seen: list[str] = []
    sizes: list[int] = []
    while True:
        page = await _page(client, service="assistant-api", start=start, end=end, limit=3)
        sizes.append(len(page))
        seen += [trace["traceID"] for trace in page]
        if len(page) < 3:
            break
        end = min(_start(trace) for trace in page) - 1
    assert seen == TRACES[::-1]
    assert sizes == [3, 3, 1]


async def test_adjacent_windows_split_the_traces_between_them(client: httpx.AsyncClient) -> None:
    base = now_us() - 50 * MINUTE_US
    for index, trace_id in enumerate(TRACES):
        await send_otlp(client, agent_trace(trace_id, (base + index * MINUTE_US) * 1000))
    middle = base + 3 * MINUTE_US  # the fourth trace's root starts exactly here
    older = await _page(client, start=base, end=middle - 1, limit=20)
    newer = await _page(client, start=middle, end=now_us(), limit=20)
    assert [trace["traceID"] for trace in older] == TRACES[:3][::-1]
    assert [trace["traceID"] for trace in newer] == TRACES[3:][::-1]


async def test_a_limit_beyond_one_internal_page(client: httpx.AsyncClient) -> None:
    """Search pages of at most 100 traces are chained until the limit is reached."""
    base_ns = (now_us() - 20 * MINUTE_US) * 1000
    spans = [
        SpanSpec(f"{n:032x}", f"{n:016x}", "probe", base_ns + n * 1000, base_ns + n * 1000 + 500)
        for n in range(1, 131)
    ]
    await send_otlp(client, traces_json(spans, service="prober"))
    found = await _page(client, service="prober", limit=120)
    assert [trace["traceID"] for trace in found] == [f"{n:016x}" for n in range(130, 10, -1)]
    assert len(await _page(client, service="prober", limit=1000)) == 130
