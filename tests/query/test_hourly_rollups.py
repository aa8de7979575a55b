"""Reads over whole hours (`span_rollups_hourly`) answer what the minute rows answer.

The compaction job merges a minute's rollup rows and folds the rows it had not compacted
before into their hour, in one transaction; long-window reads then take whole hours from
the hourly table, plus the minute rows not folded yet and the edge hours' minutes
(app/query/span_stats.py). Every state is compared with the read of minute rows alone:
nothing compacted, all compacted, late data into compacted hours (and a retried export),
part of the minutes compacted, then all again. Two projects, so the fold keeps each its own.
Spans go through OTLP to a collector whose own jobs are off, so the test decides when
compaction runs.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from query.query_kit import Span, send_spans
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import create_key
from app.db.tables import span_rollups, span_rollups_hourly
from app.domain.span_stats import SpanStats
from app.ingest.rollups import LLM, REQUEST, TOOL
from app.query import dashboard
from app.query.span_stats import rollup_stats
from app.workers.rollups import MINUTES_PER_TRANSACTION, chunks, compact_rollups

r = span_rollups.c
MODELS = [("gpt-4o", "openai"), ("claude-sonnet-4", "anthropic"), ("llama-3", "")]
TOOLS = ["search", "shell", "read_file"]
SERVICES = ["agent", "planner"]


@dataclass
class Project:
    id: int
    client: httpx.AsyncClient


def spans_of(rng: random.Random, base: datetime, count: int) -> list[Span]:
    """Agent turns over five hours: a root, a model call and a tool call each."""
    made = []
    for number in range(count):
        trace = rng.randbytes(16).hex()
        offset = rng.randrange(0, 5 * 3600) + (0 if number % 7 == 0 else rng.random())
        start = base + timedelta(seconds=offset)
        service = rng.choice(SERVICES)
        root = Span(trace, rng.randbytes(8).hex(), service, "turn", start,
                    rng.choice([3, 250, 999, 1000, 4000]),
                    status="error" if rng.random() < 0.1 else "ok")  # fmt: skip
        model, provider = rng.choice(MODELS)
        call = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": rng.randint(1, 900),
                "gen_ai.usage.output_tokens": rng.randint(1, 300)}  # fmt: skip
        if provider:
            call["gen_ai.system"] = provider
        made += [
            root,
            Span(trace, rng.randbytes(8).hex(), service, f"chat {model}",
                 start + timedelta(milliseconds=rng.randint(0, 500)), rng.randint(20, 9000),
                 parent=root.span_id, status=rng.choice(["unset", "ok", "error"]),
                 attributes=call),
            Span(trace, rng.randbytes(8).hex(), service, "execute_tool",
                 start + timedelta(milliseconds=rng.randint(0, 900)), rng.randint(1, 3000),
                 parent=root.span_id, status=rng.choice(["unset", "error"]),
                 attributes={"gen_ai.tool.name": rng.choice(TOOLS)}),
        ]  # fmt: skip
    rng.shuffle(made)
    return made


async def send(client: httpx.AsyncClient, spans: list[Span], rng: random.Random) -> list[Span]:
    """Sent in batches of 40; returns the last batch (to send again as a retry)."""
    batch: list[Span] = []
    for start in range(0, len(spans), 40):
        batch = spans[start : start + 40]
        await send_spans(client, batch, rng.choice(["otlp-protobuf", "otlp-json", "native"]))
    return batch


@pytest.fixture(scope="module")
async def world(
    start_collector_module: Any, engine: AsyncEngine
) -> AsyncIterator[tuple[list[Project], datetime, random.Random]]:
    collector: Collector = start_collector_module
    base = (datetime.now(UTC) - timedelta(hours=5, minutes=20)).replace(second=7)
    rng = random.Random(20261130)
    found = []
    for _ in range(2):
        key = await create_key(engine, f"hours-{uuid.uuid4().hex[:8]}", ["ingest", "read"])
        client = httpx.AsyncClient(
            base_url=collector.url, headers={"Authorization": f"Bearer {key.key}"}, timeout=30
        )
        found.append(Project(key.project_id, client))
    yield found, base, rng
    for project in found:
        await project.client.aclose()


@pytest.fixture(scope="module")
def start_collector_module(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    running = Collector(database_url, env={"TELEMETRY_WORKERS_ENABLED": "false"}).start(
        tmp_path_factory.mktemp("hourly-logs")
    )
    yield running
    running.stop()


def windows(base: datetime, rng: random.Random) -> list[tuple[datetime, datetime]]:
    """(first minute, last): whole hours inside, none, edges on and off the hour."""
    hour = base.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    found = [
        (base.replace(second=0), base + timedelta(hours=6)),
        (hour, hour + timedelta(hours=3)),
        (hour, hour + timedelta(hours=2, minutes=59)),
        (hour, hour + timedelta(hours=2, minutes=58, seconds=59, microseconds=999_999)),
        (hour - timedelta(minutes=1), hour + timedelta(hours=1, minutes=59, seconds=30)),
        (hour + timedelta(minutes=1), hour + timedelta(hours=1, minutes=59)),
        (hour + timedelta(minutes=10), hour + timedelta(minutes=50)),
    ]
    for _ in range(6):
        first = base.replace(second=0) + timedelta(minutes=rng.randrange(0, 300))
        found.append((first, first + timedelta(seconds=rng.randrange(60, 6 * 3600))))
    return found


READS = [
    (REQUEST, [], []),
    (REQUEST, [r.service_name], []),
    (LLM, [r.model, r.provider], []),
    (LLM, [r.model], [r.service_name == "planner"]),
    (LLM, [], []),
    (TOOL, [r.tool], []),
    (TOOL, [r.service_name, r.tool], [r.tool == "shell"]),
]


def same(hourly: dict[Any, SpanStats], minutes: dict[Any, SpanStats]) -> None:
    assert hourly.keys() == minutes.keys()
    for key, expected in minutes.items():
        got = hourly[key]
        assert (got.count, got.errors, got.input_tokens, got.output_tokens) == (
            expected.count,
            expected.errors,
            expected.input_tokens,
            expected.output_tokens,
        ), key
        assert got.sketch == expected.sketch, key
        assert math.isclose(got.duration_ms, expected.duration_ms, rel_tol=1e-9), key
        assert math.isclose(got.cost_usd, expected.cost_usd, rel_tol=1e-9, abs_tol=1e-12), key


async def check_reads(engine: AsyncEngine, projects: list[Project], base: datetime) -> int:
    """Every read of every window, hourly and by minute, equal; returns the reads made."""
    made = 0
    rng = random.Random(7)
    async with engine.connect() as connection:
        for project in projects:
            for first, last in windows(base, rng):
                for category, keys, conditions in READS:
                    options: dict[str, Any] = {"keys": keys, "conditions": conditions}
                    minutes = await rollup_stats(
                        connection, project.id, category, first, last, **options
                    )
                    hourly = await rollup_stats(
                        connection, project.id, category, first, last, hourly=True, **options
                    )
                    same(hourly, minutes)
                    made += 1
    return made


async def test_hourly_reads_equal_minute_reads_through_compaction(
    world: tuple[list[Project], datetime, random.Random], engine: AsyncEngine
) -> None:
    projects, base, rng = world
    retries = []
    for number, project in enumerate(projects):
        retries.append(await send(project.client, spans_of(rng, base, 160 - 60 * number), rng))
    assert await check_reads(engine, projects, base) > 0  # nothing compacted yet

    await compact_rollups(engine, max_minutes=100_000)
    async with engine.connect() as connection:
        assert await connection.scalar(
            select(func.count())
            .select_from(span_rollups_hourly)
            .where(span_rollups_hourly.c.project_id.in_([p.id for p in projects]))
        )
        assert not await connection.scalar(
            select(func.count()).where(
                r.project_id.in_([p.id for p in projects]), r.compacted.is_(False)
            )
        )
    await check_reads(engine, projects, base)

    # Late data into hours already folded, and a retried export (counted once).
    for project, retry in zip(projects, retries, strict=True):
        await send(project.client, spans_of(rng, base, 50), rng)
        await send_spans(project.client, retry, "otlp-protobuf")
    await check_reads(engine, projects, base)

    await compact_rollups(engine, max_minutes=7)  # a few minutes folded, the rest not
    await check_reads(engine, projects, base)

    # In many small transactions (at most 50 rows each), as a backfilled minute would be.
    await compact_rollups(engine, max_minutes=100_000, max_rows=50)
    await check_reads(engine, projects, base)
    async with engine.connect() as connection:
        # One row per hour and key once the touched hours are merged again.
        h = span_rollups_hourly.c
        repeated = await connection.scalar(
            select(func.count()).select_from(
                select(h.project_id)
                .where(h.project_id.in_([p.id for p in projects]))
                .group_by(
                    h.project_id, h.hour, h.category, h.service_name, h.model, h.provider, h.tool
                )  # fmt: skip
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert repeated == 0


async def test_llm_dashboard_is_the_same_before_and_after_folding(
    world: tuple[list[Project], datetime, random.Random], engine: AsyncEngine
) -> None:
    """The dashboard over the API: its numbers do not move when compaction runs."""
    projects, base, rng = world
    project = projects[1]
    await send(project.client, spans_of(rng, base, 60), rng)
    now = datetime.now(UTC)
    before = await dashboard.llm_usage(engine, project.id, window_s=6 * 3600, now=now)
    overview_before = await dashboard.overview(engine, project.id, window_s=6 * 3600, now=now)
    await compact_rollups(engine, max_minutes=100_000)
    after = await dashboard.llm_usage(engine, project.id, window_s=6 * 3600, now=now)
    overview_after = await dashboard.overview(engine, project.id, window_s=6 * 3600, now=now)
    assert before["models"] and before["tools"]
    for part in ("models", "tools"):
        assert [{k: v for k, v in row.items() if k != "cost_usd"} for row in after[part]] == [
            {k: v for k, v in row.items() if k != "cost_usd"} for row in before[part]
        ]
        for old, new in zip(before[part], after[part], strict=True):
            assert math.isclose(old.get("cost_usd", 0), new.get("cost_usd", 0), abs_tol=1e-6)
    assert overview_after["llm"]["input_tokens"] == overview_before["llm"]["input_tokens"]
    assert overview_after["requests"] == overview_before["requests"]
    answer = await project.client.get("/api/v1/dashboard/llm", params={"window": "6h"})
    assert answer.status_code == 200
    assert {row["model"] for row in answer.json()["models"]} == {
        row["model"] for row in after["models"]
    }


def test_compaction_chunks_are_bounded_in_rows_and_minutes() -> None:
    @dataclass
    class Target:
        project_id: int
        minute: int
        rows: int

    sizes = [5, 30, 1, 90, 2, 2, 2, 40] + [1] * 450
    targets = [Target(1, number, size) for number, size in enumerate(sizes)]
    found = chunks(targets, max_rows=40)  # type: ignore[arg-type]
    assert [t for chunk in found for t in chunk] == targets  # all, once, in order
    for chunk in found:
        assert len(chunk) <= MINUTES_PER_TRANSACTION
        assert sum(t.rows for t in chunk) <= 40 or len(chunk) == 1  # 90 rows: alone
    assert [[t.rows for t in chunk] for chunk in found[:2]] == [[5, 30, 1], [90]]


async def test_long_windows_step_by_whole_hours_read_from_hours(
    world: tuple[list[Project], datetime, random.Random], engine: AsyncEngine
) -> None:
    """From 60 h, steps are whole hours from the hour the window starts in (the first one
    shorter), and the series read hourly rows: the same before and after folding."""
    projects, base, rng = world
    project = projects[0]
    await send(project.client, spans_of(rng, base, 40), rng)
    now = datetime.now(UTC)
    window_s = 3 * 86_400
    before = await dashboard.overview(engine, project.id, window_s=window_s, now=now)
    series_before = await dashboard.llm_timeseries(engine, project.id, window_s=window_s, now=now)
    await compact_rollups(engine, max_minutes=100_000)
    after = await dashboard.overview(engine, project.id, window_s=window_s, now=now)
    series_after = await dashboard.llm_timeseries(engine, project.id, window_s=window_s, now=now)

    timeline = after["timeseries"]
    assert timeline["step"] == "120m"
    stamps = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in timeline["timestamps"]]
    origin = (now - timedelta(seconds=window_s)).replace(second=0, microsecond=0)
    assert stamps[0] == origin
    assert all(t.minute == 0 and t.second == 0 for t in stamps[1:])
    assert all(b - a == timedelta(hours=2) for a, b in zip(stamps[1:], stamps[2:], strict=False))
    assert stamps[-1] <= now < stamps[-1] + timedelta(hours=2)
    assert sum(timeline["requests"]) == after["requests"] > 0
    for name in ("requests", "errors", "p50_ms", "p95_ms"):
        assert timeline[name] == before["timeseries"][name], name
    assert (after["requests"], after["latency_ms"]) == (before["requests"], before["latency_ms"])
    assert [m["model"] for m in series_after["models"]] == [
        m["model"] for m in series_before["models"]
    ]
    for old, new in zip(series_before["models"], series_after["models"], strict=True):
        assert (old["input_tokens"], old["output_tokens"]) == (
            new["input_tokens"],
            new["output_tokens"],
        )
    # The same counts as a 24-minute-step read of the minute rows over the same minutes.
    assert after["requests"] == sum(
        stats.count for stats in (await _minute_totals(engine, project.id, origin, now)).values()
    )


async def _minute_totals(
    engine: AsyncEngine, project_id: int, first: datetime, last: datetime
) -> dict[Any, SpanStats]:
    async with engine.connect() as connection:
        return await rollup_stats(connection, project_id, REQUEST, first, last, sketches=False)
