"""The fast read paths answer exactly what the slow reference queries answer.

Trace search reads candidate traces through the span filter indexes (app/query/
trace_candidates.py), probing each when they are few and testing the roots' membership
among them when they are more; the reference is the walk over the window's roots testing
each trace for a matching span (`search_query` without candidates, the path taken when
matches are many). The services list adds the operation catalog's whole minutes to raw spans at the
window's edges (app/query/services.py); the reference counts every span of the window.

The data is sent over OTLP from two projects, out of order: children before their roots,
late spans that started long before spans sent earlier, and one export sent twice (a
retry, which must not count twice), with start times off minute boundaries and on them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from otlp_testkit import traces_pb
from query.query_kit import PROTOBUF, Span, send_spans
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import create_key
from app.db.tables import spans
from app.domain.records import STATUS_ERROR
from app.query import trace_candidates
from app.query import traces as traces_module
from app.query.jaeger_reads import operations_with_kinds
from app.query.services import list_services
from app.query.traces import SpanFilters, fetch_planned_for_values, search_query, search_traces
from app.workers.operations import compact_operations

SERVICES = ("gateway", "planner", "tools", "llm")
NAMES = {"gateway": ["POST /chat"], "planner": ["plan", "replan"], "tools": ["run", "fetch"],
         "llm": ["chat a", "chat b"]}  # fmt: skip


@dataclass
class Project:
    id: int
    client: httpx.AsyncClient


def _hex(rng: random.Random, size: int) -> str:
    return rng.randbytes(size).hex()


def traces(rng: random.Random, base: datetime, count: int) -> list[list[Span]]:
    """Traces of 2..8 spans over three hours; some with a second parentless span."""
    made = []
    for number in range(count):
        trace = _hex(rng, 16)
        # Every fifth trace starts on a whole minute: edges of the catalog's minutes.
        offset = rng.randrange(0, 3 * 3600) + (0 if number % 5 == 0 else rng.random())
        start = (base + timedelta(seconds=offset)).replace(
            microsecond=0 if number % 5 == 0 else rng.randrange(1_000_000)
        )
        root = Span(trace, _hex(rng, 8), "gateway", "POST /chat", start, rng.randint(50, 5000),
                    status="error" if rng.random() < 0.1 else "ok",
                    attributes={"user.id": f"u{rng.randint(1, 6)}"})  # fmt: skip
        members = [root]
        for _ in range(rng.randint(1, 7)):
            service = rng.choice(SERVICES[1:])
            members.append(
                Span(trace, _hex(rng, 8), service, rng.choice(NAMES[service]),
                     start + timedelta(milliseconds=rng.randint(-200, 90_000)),
                     rng.choice([1, 5, 30, 250, 999, 1000, 1001, 4000, 20_000]),
                     parent=root.span_id,
                     status=rng.choice(["unset", "unset", "ok", "error"]),
                     attributes={"tool": rng.choice(["a", "b", "c"]), "n": rng.randint(1, 3)})
            )  # fmt: skip
        if number % 17 == 0:  # a second parentless span, earlier or later than the first
            members.append(
                Span(trace, _hex(rng, 8), "planner", "plan",
                     start + timedelta(seconds=rng.choice([-30, 30])), 10)
            )  # fmt: skip
        made.append(members)
    return made


async def send_out_of_order(
    client: httpx.AsyncClient, rng: random.Random, made: list[list[Span]]
) -> None:
    children = [span for trace in made for span in trace if span.parent]
    roots = [span for trace in made for span in trace if not span.parent]
    rng.shuffle(children)
    rng.shuffle(roots)
    # Children first, roots later; the newest roots before the oldest (late data).
    batches = [children[i : i + 40] for i in range(0, len(children), 40)]
    roots.sort(key=lambda span: span.start, reverse=True)
    batches += [roots[i : i + 25] for i in range(0, len(roots), 25)]
    for batch in batches:
        await send_spans(client, batch, "otlp-protobuf")
    # A retried export: stored once, counted once.
    retried = traces_pb(
        [span.otlp() for span in batches[0] if span.service == "planner"], service="planner"
    )
    for _ in range(2):
        response = await client.post(
            "/v1/traces", content=retried.SerializeToString(), headers=PROTOBUF
        )
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
async def projects(
    collector: Collector, engine: AsyncEngine
) -> AsyncIterator[tuple[Project, Project, datetime]]:
    base = (datetime.now(UTC) - timedelta(hours=3, minutes=30)).replace(second=0, microsecond=0)
    rng = random.Random(20261130)
    found = []
    for size in (120, 60):
        key = await create_key(engine, f"fast-{uuid.uuid4().hex[:8]}", ["ingest", "read"])
        client = httpx.AsyncClient(
            base_url=collector.url, headers={"Authorization": f"Bearer {key.key}"}, timeout=30
        )
        await send_out_of_order(client, rng, traces(rng, base, size))
        found.append(Project(key.project_id, client))
    # Statistics, as the partition-maintenance job keeps them: trace search reads as many
    # candidates as PostgreSQL estimates match.
    async with engine.connect() as connection:
        await (await connection.execution_options(isolation_level="AUTOCOMMIT")).execute(
            text("ANALYZE spans")
        )
    yield found[0], found[1], base
    for project in found:
        await project.client.aclose()


def windows(base: datetime) -> list[tuple[datetime, datetime]]:
    rng = random.Random(7)
    found = [
        (base - timedelta(hours=1), base + timedelta(hours=5)),  # everything
        (base, base + timedelta(hours=1)),  # whole minutes at both ends
        (base + timedelta(seconds=30), base + timedelta(seconds=90)),  # no whole minute
        (
            base + timedelta(minutes=5),
            base + timedelta(minutes=5, seconds=59, microseconds=999_999),
        ),
        (base + timedelta(hours=4), base + timedelta(hours=5)),  # nothing
    ]
    for _ in range(12):
        start = base + timedelta(seconds=rng.uniform(-600, 3 * 3600))
        found.append((start, start + timedelta(seconds=rng.uniform(1, 2 * 3600))))
    return found


async def reference_services(
    engine: AsyncEngine, project_id: int, start: datetime, end: datetime
) -> list[tuple[str, str, int, int]]:
    query = (
        select(spans.c.service_name, spans.c.name, func.count(),
               func.count().filter(spans.c.status_code == STATUS_ERROR))
        .where(spans.c.project_id == project_id, spans.c.start_time >= start,
               spans.c.start_time <= end)
        .group_by(spans.c.service_name, spans.c.name)
        .order_by(spans.c.service_name, spans.c.name)
    )  # fmt: skip
    return [tuple(row) for row in await fetch_planned_for_values(engine, query)]


def flattened(services: list[dict[str, Any]]) -> list[tuple[str, str, int, int]]:
    found = []
    for service in services:
        assert service["operations"] == [item["name"] for item in service["operation_stats"]]
        assert service["span_count"] == sum(
            item["span_count"] for item in service["operation_stats"]
        )
        assert service["error_count"] == sum(
            item["error_count"] for item in service["operation_stats"]
        )
        found += [
            (service["name"], item["name"], item["span_count"], item["error_count"])
            for item in service["operation_stats"]
        ]
    return found


async def test_services_equal_counting_every_span(
    projects: tuple[Project, Project, datetime], engine: AsyncEngine
) -> None:
    """Before and after the catalog's compaction (the shared collector's job may also have
    compacted some minutes already: rows of both kinds are compared)."""
    first, second, base = projects
    checked = 0
    for compact in (False, True):
        if compact:
            await compact_operations(engine)
        for project in (first, second):
            for start, end in windows(base):
                expected = await reference_services(engine, project.id, start, end)
                fast = await list_services(engine, project.id, start=start, end=end)
                assert flattened(fast) == expected, (start, end)
                checked += bool(expected)
    assert checked >= 40  # most windows hold spans: the comparison is not of empty lists


async def test_jaeger_operations_equal_the_spans_kinds(
    projects: tuple[Project, Project, datetime], engine: AsyncEngine
) -> None:
    first, _, base = projects
    now = base + timedelta(hours=3, minutes=29, seconds=30)
    for service in (*SERVICES, "unknown"):
        found = await operations_with_kinds(engine, first.id, service, None, now)
        query = (
            select(spans.c.name)
            .where(spans.c.project_id == first.id, spans.c.service_name == service)
            .group_by(spans.c.name).order_by(spans.c.name)
        )  # fmt: skip
        names = [row.name for row in await fetch_planned_for_values(engine, query)]
        assert [name for name, _ in found] == names
        assert all(kind == "internal" for _, kind in found)


FILTERS = [
    SpanFilters(service="planner", min_duration_ms=1000),
    SpanFilters(service="planner", min_duration_ms=1000.5),
    SpanFilters(service="tools", max_duration_ms=30),
    SpanFilters(service="llm", min_duration_ms=999, max_duration_ms=1001),
    SpanFilters(service="planner", status="error"),
    SpanFilters(service="gateway", status="error"),
    SpanFilters(status="error"),
    SpanFilters(service="tools", name="fetch"),
    SpanFilters(service="planner", name="plan", status="ok"),
    SpanFilters(attributes=(("user.id", "u3"),)),
    SpanFilters(service="tools", attributes=(("tool", "b"), ("n", "2"))),
    SpanFilters(service="nobody"),
    SpanFilters(min_duration_ms=20_000),
]


async def pages(
    engine: AsyncEngine, project_id: int, filters: SpanFilters, start: datetime, end: datetime
) -> list[list[dict[str, Any]]]:
    found, cursor = [], None
    for _ in range(200):
        page = await search_traces(
            engine, project_id, filters, start=start, end=end, limit=7, cursor=cursor
        )
        found.append(page["traces"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("paging did not end")


async def reference_pages(
    engine: AsyncEngine, project_id: int, filters: SpanFilters, start: datetime, end: datetime
) -> list[list[dict[str, Any]]]:
    """The root walk (no candidates), paged on the same positions."""
    from app.query.traces import _summary

    found, position = [], None
    for _ in range(200):
        rows = await fetch_planned_for_values(
            engine, search_query(project_id, filters, start, end, 7, position)
        )
        found.append([_summary(row) for row in rows[:7]])
        if len(rows) <= 7:
            return found
        position = (rows[6].root_start, rows[6].trace_id)
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(
    ("candidate_limit", "membership_limit"),
    [
        (5_000, 20_000),  # every search made from its candidates
        (3, 20_000),  # past 3: slow spans of a service by membership, others the walk
        (3, 3),  # past 3 spans: the plain root walk
        (12, 40),  # each filter on whichever side of both limits it falls
    ],
)
async def test_trace_search_equals_the_root_walk(
    projects: tuple[Project, Project, datetime],
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    candidate_limit: int,
    membership_limit: int,
) -> None:
    """With few candidates the page is made from them; with more, a service's slow spans
    are all read and the root walk tests membership among them; past the second limit,
    or for other filters, the plain root walk. Paged through every cursor, compared with
    the plain walk."""
    monkeypatch.setattr(trace_candidates, "CANDIDATE_LIMIT", candidate_limit)
    monkeypatch.setattr(trace_candidates, "MEMBERSHIP_LIMIT", membership_limit)
    # Read every candidate up to MEMBERSHIP_LIMIT, whatever the window's size.
    monkeypatch.setattr(trace_candidates, "WALK_OVER_READ", 10**12)
    taken: dict[str, int] = {"probed": 0, "membership": 0, "walk": 0}
    real_matching = trace_candidates.matching_traces

    async def counted(*args: Any, **options: Any) -> trace_candidates.Candidates | None:
        found = await real_matching(*args, **options)
        if found is None:
            taken["walk"] += 1
        elif found.count:
            taken["probed" if trace_candidates.probed(found) else "membership"] += 1
        return found

    monkeypatch.setattr(traces_module, "matching_traces", counted)
    first, second, base = projects
    nonempty = 0
    for project in (first, second):
        for filters in FILTERS:
            for start, end in windows(base)[:6]:
                expected = await reference_pages(engine, project.id, filters, start, end)
                assert await pages(engine, project.id, filters, start, end) == expected, (
                    filters,
                    start,
                    end,
                )
                nonempty += bool(expected[0])
    assert nonempty >= 40
    # Which path a search takes also follows PostgreSQL's estimates; each side of the
    # limits is taken at least once.
    expected_paths = {
        (5_000, 20_000): {"probed"},
        (3, 20_000): {"probed", "membership"},
        (3, 3): {"probed", "walk"},
        (12, 40): {"probed", "membership", "walk"},
    }[(candidate_limit, membership_limit)]
    assert {path for path, count in taken.items() if count} >= expected_paths, taken
