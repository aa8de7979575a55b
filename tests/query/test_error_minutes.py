"""The overview's error-event count, read from per-minute counts, equals counting the events.

Events go through the real ingest path (native errors over HTTP, so a re-sent event has
its identity and is stored once); the fast count (`error_minutes` for whole minutes, raw
`error_events` at the edges) is compared with a plain count of `error_events` over
windows whose edges fall mid-minute, on a minute, on an event, and within one minute;
before compaction (several rows per key), and after.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from query.query_kit import get_ok, rfc3339
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector, job_paused

from app.auth import create_key
from app.db.tables import error_events, error_minutes
from app.query.error_counts import count_error_events
from app.workers.error_minutes import compact_error_minutes


async def _project(collector: Collector, engine: AsyncEngine) -> tuple[int, httpx.AsyncClient]:
    made = await create_key(engine, f"project-{uuid.uuid4().hex[:8]}", ["ingest", "read"])
    client = httpx.AsyncClient(
        base_url=collector.url, headers={"Authorization": f"Bearer {made.key}"}, timeout=30
    )
    return made.project_id, client


def _error(service: str, moment: datetime, index: int) -> dict[str, Any]:
    return {
        "type": "ToolTimeout",
        "message": f"call {index} timed out",
        "service": service,
        "timestamp": rfc3339(moment),
    }


async def _send(client: httpx.AsyncClient, errors: list[dict[str, Any]]) -> None:
    response = await client.post("/api/v1/ingest/errors", json={"errors": errors})
    assert response.status_code == 200, response.text


async def _raw_count(
    engine: AsyncEngine, project_id: int, start: datetime, end: datetime, service: str | None
) -> int:
    e = error_events.c
    query = select(func.count()).where(e.project_id == project_id, e.time >= start, e.time <= end)
    if service is not None:
        query = query.where(e.service_name == service)
    async with engine.connect() as connection:
        return int(await connection.scalar(query))


async def _fast_count(
    engine: AsyncEngine, project_id: int, start: datetime, end: datetime, service: str | None
) -> int:
    async with engine.connect() as connection:
        return await count_error_events(connection, project_id, start, end, service)


@pytest.fixture
async def two_projects(
    start_collector: Callable[..., Collector], engine: AsyncEngine, database_url: str
) -> AsyncIterator[dict[str, Any]]:
    """Events over 40 minutes in two projects (two services each, one service name
    shared), some sent twice (a retry), some twice in one request; the other project
    gets the same events plus its own. Sent to a collector without background jobs, and
    the compaction job held for the whole test (the session's shared collector runs it
    every few seconds over every project), so nothing is compacted until the test says so."""
    async with job_paused(database_url, "rollup-compaction"):
        yield await _send_two_projects(start_collector, engine)


async def _send_two_projects(
    start_collector: Callable[..., Collector], engine: AsyncEngine
) -> dict[str, Any]:
    collector = start_collector(env={"TELEMETRY_WORKERS_ENABLED": "false"})
    origin = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=45)
    times = [
        origin + timedelta(minutes=minute, seconds=second, microseconds=micro)
        for minute, second, micro in [
            (0, 0, 0),
            (0, 59, 999_999),
            (1, 0, 0),
            (1, 30, 123_000),
            *[
                (minute, (7 * minute) % 59 + extra, 500_000)
                for minute in range(2, 40)
                for extra in (0, 1)
            ],
            (40, 0, 0),
            (40, 30, 0),
        ]
    ]
    first, firsts_client = await _project(collector, engine)
    second, seconds_client = await _project(collector, engine)
    async with firsts_client, seconds_client:
        mine = [
            _error("checkout" if moment.minute % 3 else "billing", moment, index)
            for index, moment in enumerate(times)
        ]
        # Alternate events in two requests, so a minute holds several uncompacted rows.
        for parity in (0, 1):
            await _send(firsts_client, mine[parity::2])
        await _send(firsts_client, mine[:10])  # a client retrying: stored once
        await _send(firsts_client, [mine[20], mine[20], mine[21]])  # twice in one request
        theirs = [*mine[5:], _error("checkout", times[3], 999), _error("other", times[4], 998)]
        await _send(seconds_client, theirs)
    return {"projects": (first, second), "times": times}


def _windows(times: list[datetime]) -> list[tuple[datetime, datetime]]:
    origin = times[0]
    second = timedelta(seconds=1)
    return [
        (origin - timedelta(minutes=5), origin + timedelta(hours=1)),  # everything
        (origin + 17 * second, origin + timedelta(minutes=33, seconds=41)),  # mid-minute
        (origin, origin + timedelta(minutes=40)),  # on minutes, events at both edges
        (times[1], times[-2]),  # edges on events
        (times[1] + timedelta(microseconds=1), times[-2] - timedelta(microseconds=1)),
        (origin + timedelta(minutes=1), origin + timedelta(minutes=2)),  # one whole minute
        (origin + 10 * second, origin + 50 * second),  # inside one minute
        (times[3], times[3]),  # a single instant
        (origin + timedelta(minutes=3, seconds=30), origin + timedelta(minutes=4, seconds=5)),
    ]


async def _check(engine: AsyncEngine, data: dict[str, Any]) -> int:
    checked = 0
    for project_id in data["projects"]:
        for start, end in _windows(data["times"]):
            for service in (None, "checkout", "billing", "other", "absent"):
                raw = await _raw_count(engine, project_id, start, end, service)
                fast = await _fast_count(engine, project_id, start, end, service)
                assert fast == raw, (project_id, start, end, service)
                checked += raw
    return checked


async def test_fast_count_equals_the_raw_count_before_and_after_compaction(
    engine: AsyncEngine, two_projects: dict[str, Any]
) -> None:
    first, second = two_projects["projects"]
    m = error_minutes.c
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(m.minute, m.service_name, func.count(), func.bool_or(~m.compacted))
                .where(m.project_id == first)
                .group_by(m.minute, m.service_name)
            )
        ).all()
    assert any(count > 1 for _, _, count, _ in rows), "several rows per key before compaction"
    assert all(uncompacted for *_, uncompacted in rows)
    # Retries and duplicates were stored once, and counted once per minute.
    everything = (two_projects["times"][0] - timedelta(hours=1), datetime.now(UTC))
    assert await _raw_count(engine, first, *everything, None) == len(two_projects["times"])
    assert await _raw_count(engine, second, *everything, None) == len(two_projects["times"]) - 3
    async with engine.connect() as connection:
        per_minute = await connection.scalar(
            select(func.sum(m.event_count)).where(m.project_id == first)
        )
    assert per_minute == len(two_projects["times"])

    assert await _check(engine, two_projects) > 0

    # Merges every project's settled minutes (also other tests'): these are 5+ minutes old.
    await compact_error_minutes(engine)
    async with engine.connect() as connection:
        remaining = await connection.scalar(
            select(func.count()).where(m.project_id.in_([first, second]), m.compacted.is_(False))
        )
        keys = await connection.scalar(select(func.count()).where(m.project_id == first))
    assert remaining == 0
    assert keys == len({(row.minute, row.service_name) for row in rows})
    assert await _check(engine, two_projects) > 0


async def test_a_retried_event_counts_once_in_its_group_and_minute(
    collector: Collector, engine: AsyncEngine
) -> None:
    project_id, client = await _project(collector, engine)
    moment = datetime.now(UTC) - timedelta(minutes=10)
    event = _error("retrier", moment, 1)
    async with client:
        await _send(client, [event, event])  # twice in one request
        await _send(client, [event])  # and sent again
        overview = await get_ok(client, "/api/v1/dashboard/overview", {"window": "1h"})
        group = (await get_ok(client, "/api/v1/errors", {"start": "now-1h"}))["errors"][0]
    assert overview["errors"] == {"new_groups": 1, "events": 1}
    assert group["count"] == 1
    start, end = moment - timedelta(minutes=5), moment + timedelta(minutes=5)
    assert await _fast_count(engine, project_id, start, end, None) == 1


async def test_overview_counts_each_projects_events_with_the_service_filter(
    collector: Collector, engine: AsyncEngine
) -> None:
    """Through HTTP: the overview's count is the raw count of its window, per project
    and per service (events kept away from the window's edges, which move with `now`)."""
    now = datetime.now(UTC)
    projects = [await _project(collector, engine) for _ in range(2)]
    for offset, (_, client) in enumerate(projects):
        events = [
            _error(
                "api" if index % 2 else "worker",
                now - timedelta(minutes=50, seconds=-13 * index),
                index,
            )
            for index in range(20 + offset * 7)
        ]
        async with client:
            await _send(client, events)
    for project_id, client in projects:
        async with httpx.AsyncClient(base_url=collector.url, headers=client.headers) as http:
            for service in (None, "api", "worker"):
                params = {"window": "1h", **({"service": service} if service else {})}
                overview = await get_ok(http, "/api/v1/dashboard/overview", params)
                end = datetime.fromisoformat(overview["window"]["end"])
                start = datetime.fromisoformat(overview["window"]["start"])
                raw = await _raw_count(engine, project_id, start, end, service)
                assert overview["errors"]["events"] == raw > 0, (project_id, service)
