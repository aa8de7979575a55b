"""Span alert rule values over data sent through the real ingest path.

The world (tests/query/span_rules_kit.py): 30 conversation turns inside the rules'
5-minute window, a batch worker whose resource carries attributes, and two services seen
only before the window. Every rollup-eligible rule is checked equal on both paths and
against an oracle over the stored rows; percentiles and error rates against the
dashboards for the same window.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from query.span_rules_kit import (
    NOW,
    WINDOW_S,
    World,
    expected,
    grouped,
    is_llm,
    is_request,
    is_tool,
    rule_query,
    send,
)
from sqlalchemy import BigInteger, event, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY

from app.domain import sketch
from app.query import dashboard
from app.query.span_samples import rollup_category
from app.query.span_stats import bucket_index_sql


@pytest.fixture
async def world(client, db, engine, project_name) -> World:
    await send(client, NOW)
    project_id = await db.fetchval("SELECT id FROM projects WHERE name = $1", project_name)
    rows = [
        {
            **row,
            "attributes": json.loads(row["attributes"]),
            "resource_attributes": json.loads(row["resource_attributes"]),
        }
        for row in await db.fetch("SELECT * FROM spans WHERE project_id = $1", project_id)
    ]
    return World(engine, project_id, rows)


async def test_bucket_index_in_sql_equals_the_sketch(engine) -> None:
    durations_ns = {0, 1, 999, 1000, 1001, 1002, 10**6, 10**13, 2**53, 2**53 + 1}
    for index in range(sketch.ZERO_INDEX - 1, 1100):  # up to about 30 days, in ns
        edge = sketch.GAMMA**index * 1e6  # a bucket's upper bound
        durations_ns.update(range(max(int(edge) - 2, 0), int(edge) + 3))
    ordered = sorted(durations_ns)
    table = func.unnest(literal(ordered, ARRAY(BigInteger))).table_valued("ns").render_derived()
    async with engine.connect() as connection:
        rows = (await connection.execute(select(table.c.ns, bucket_index_sql(table.c.ns)))).all()
    assert len(rows) == len(ordered)
    mismatched = [(ns, got) for ns, got in rows if got != sketch.bucket_index(ns / 1_000_000)]
    assert mismatched == []


def test_rollups_answer_only_what_they_key_on() -> None:
    def category(aggregation: str, **rest: Any) -> int | None:
        return rollup_category(rule_query(aggregation, **rest))

    assert category("p95", filters={"category": "llm", "model": "x"}) == 2
    assert category("sum", field="cost_usd", filters={"category": "tool"}) == 3
    assert category("absent", filters={"category": "request"}, group_by=["service"]) == 1
    assert category("avg", filters={"category": "request"}) == 1
    assert category("count") is None  # no category: not every span is rolled up
    assert category("count", filters={"category": "request", "model": "x"}) is None
    assert category("count", filters={"category": "llm", "name": "x"}) is None
    assert category("count", filters={"category": "llm"}, group_by=["tool"]) is None
    assert category("count", filters={"category": "llm"}, group_by=["user.id"]) is None
    assert category("count", filters={"category": "llm", "attributes": {"user.id": "1"}}) is None
    # Request rollups keep no tokens or cost.
    assert category("sum", field="input_tokens", filters={"category": "request"}) is None
    assert category("avg", field="cost_usd", filters={"category": "request"}) is None


AGGREGATIONS = [
    ("count", None), ("rate", None), ("error_count", None), ("error_rate", None),
    ("avg", "duration_ms"), ("p50", None), ("p90", None), ("p95", None), ("p99", None),
]  # fmt: skip
USAGE = [
    ("sum", "input_tokens"), ("sum", "output_tokens"), ("sum", "total_tokens"),
    ("sum", "cache_read_tokens"), ("sum", "cost_usd"), ("avg", "input_tokens"),
    ("avg", "cost_usd"),
]  # fmt: skip


def _matches(got: dict, want: dict, label: str | None) -> None:
    keyed = {((label, name),) if label else (): value for name, value in want.items()}
    assert got.keys() == keyed.keys()
    for key, value in keyed.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key


@pytest.mark.parametrize(("aggregation", "field"), AGGREGATIONS)
async def test_request_aggregations_on_both_paths(world, aggregation, field) -> None:
    requests = world.spans(is_request)
    assert len(requests) == 33  # 30 turns and the batch worker's 3 parentless spans
    query = rule_query(aggregation, field=field, filters={"category": "request"})
    _matches(await world.both(query), {"": expected(requests, aggregation, field)}, None)
    by_service = rule_query(aggregation, field=field, filters={"category": "request"},
                        group_by=["service"])  # fmt: skip
    want = grouped(requests, lambda row: row["service_name"], aggregation, field)
    _matches(await world.both(by_service), want, "service")


@pytest.mark.parametrize(("aggregation", "field"), AGGREGATIONS + USAGE)
async def test_llm_and_tool_aggregations_on_both_paths(world, aggregation, field) -> None:
    llm = world.spans(is_llm)
    assert len(llm) == 30
    query = rule_query(aggregation, field=field, filters={"category": "llm"}, group_by=["model"])
    want = grouped(llm, lambda row: row["gen_ai_model"], aggregation, field)
    _matches(await world.both(query), want, "model")
    one = rule_query(aggregation, field=field, filters={"category": "llm", "provider": "openai"})
    gpt = [row for row in llm if row["gen_ai_provider"] == "openai"]
    _matches(await world.both(one), {"": expected(gpt, aggregation, field)}, None)
    tools = world.spans(is_tool)
    by_tool = rule_query(aggregation, field=field, filters={"category": "tool", "service": "tools"},
                     group_by=["tool"])  # fmt: skip
    want = grouped(tools, lambda row: row["gen_ai_tool_name"], aggregation, field)
    _matches(await world.both(by_tool), want, "tool")


async def test_rules_read_the_dashboards_numbers(world) -> None:
    overview = await dashboard.overview(world.engine, world.project_id, window_s=WINDOW_S, now=NOW)
    usage = await dashboard.llm_usage(world.engine, world.project_id, window_s=WINDOW_S, now=NOW)
    requests = {"category": "request"}
    for path in ("spans", "rollups"):
        for name in ("p50", "p95", "p99"):
            got = await world.samples(rule_query(name, filters=requests), source=path)
            assert got == {(): overview["latency_ms"][name]}, (path, name)
        got = await world.samples(rule_query("error_rate", filters=requests), source=path)
        assert got == {(): overview["error_rate"]}
        got = await world.samples(rule_query("avg", filters=requests), source=path)
        assert got == {(): overview["latency_ms"]["avg"]}
        got = await world.samples(rule_query("rate", filters=requests), source=path)
        assert got == {(): overview["request_rate_per_s"]}
        llm = {"category": "llm"}
        p95 = await world.samples(rule_query("p95", filters=llm, group_by=["model"]), source=path)
        rate = await world.samples(
            rule_query("error_rate", filters=llm, group_by=["model"]), source=path
        )
        for model in usage["models"]:
            key = (("model", model["model"]),)
            assert p95[key] == model["latency_ms"]["p95"]
            assert rate[key] == model["error_rate"]
        tool = {"category": "tool"}
        p50 = await world.samples(rule_query("p50", filters=tool, group_by=["tool"]), source=path)
        for item in usage["tools"]:
            assert p50[(("tool", item["tool"]),)] == item["latency_ms"]["p50"]


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        ({"service": "tools"}, lambda row: row["service_name"] == "tools"),
        ({"name": "POST /chat"}, lambda row: row["name"] == "POST /chat"),
        ({"kind": "client"}, lambda row: row["kind"] == 3),
        ({"kind": "internal"}, lambda row: row["kind"] in (0, 1)),
        ({"status": "error"}, lambda row: row["status_code"] == 2),
        ({"model": "gpt-4o"}, lambda row: row["gen_ai_model"] == "gpt-4o"),
        ({"provider": "anthropic"}, lambda row: row["gen_ai_provider"] == "anthropic"),
        ({"tool": "run_tests"}, lambda row: row["gen_ai_tool_name"] == "run_tests"),
        ({"operation": "execute_tool"}, lambda row: row["gen_ai_operation"] == "execute_tool"),
        ({"category": "request", "service": "api"}, lambda row: row["service_name"] == "api"),
        ({"category": "llm"}, is_llm),
        ({"category": "tool", "status": "error"}, lambda r: is_tool(r) and r["status_code"] == 2),
        ({"attributes": {"http.status_code": 500}},
         lambda row: row["attributes"].get("http.status_code") == 500),
        ({"attributes": {"user.id": "user-1"}},
         lambda row: row["attributes"].get("user.id") == "user-1"),
        # A resource attribute counts when the span lacks the key.
        ({"attributes": {"deployment.environment.name": "staging"}},
         lambda row: row["service_name"] == "batch-worker"),
        ({"attributes": {"user.id": "user-res"}},
         lambda row: row["service_name"] == "batch-worker" and "user.id" not in row["attributes"]),
    ],
)  # fmt: skip
async def test_each_filter_on_raw_spans(world, filters, keep) -> None:
    want = len(world.spans(keep))
    assert want > 0
    got = await world.samples(rule_query("count", filters=filters), source="spans")
    assert got == {(): float(want)}


async def test_group_by_attributes_span_first_then_resource(world) -> None:
    # "Cost per user over the window": user.id is a span attribute of the LLM calls.
    cost = await world.samples(
        rule_query("sum", field="cost_usd", filters={"category": "llm"}, group_by=["user.id"])
    )
    llm = world.spans(is_llm)
    want = grouped(llm, lambda row: row["attributes"]["user.id"], "sum", "cost_usd")
    _matches(cost, want, "user.id")
    assert len(cost) == 3 and all(value > 0 for value in cost.values())
    # The batch worker's resource carries user.id; its third span overrides it.
    count = await world.samples(
        rule_query("count", filters={"service": "batch-worker"}, group_by=["user.id", "status"])
    )
    assert count == {
        (("status", "unset"), ("user.id", "user-res")): 2.0,
        (("status", "unset"), ("user.id", "user-span")): 1.0,
    }
    # A key nobody has is "" for every span; one only the resource has groups the rest as "".
    environment = ["deployment.environment.name"]
    by_env = await world.samples(
        rule_query("count", filters={"category": "request"}, group_by=environment)
    )
    assert by_env == {
        (("deployment.environment.name", ""),): 30.0,
        (("deployment.environment.name", "staging"),): 3.0,
    }
    # Non-string values read as JSON text; kind and status by name.
    codes = await world.samples(
        rule_query("count", filters={"service": "api"}, group_by=["http.status_code", "kind"])
    )
    assert codes == {
        (("http.status_code", "200"), ("kind", "server")): 24.0,
        (("http.status_code", "500"), ("kind", "server")): 6.0,
    }


async def test_absent_without_and_with_group_by(world) -> None:
    present = rule_query("absent", filters={"service": "api"})
    assert await world.samples(present) == {}
    assert await world.samples(rule_query("absent", filters={"service": "nobody"})) == {(): 1.0}
    # With group_by: groups seen in the day before the window but not in it.
    per_service = rule_query("absent", group_by=["service"])
    assert await world.samples(per_service) == {(("service", "old-svc"),): 1.0}
    requests = rule_query("absent", filters={"category": "request"}, group_by=["service"])
    assert await world.both(requests) == {(("service", "old-svc"),): 1.0}
    per_model = rule_query("absent", filters={"category": "llm"}, group_by=["model"])
    assert await world.both(per_model) == {}
    per_user = rule_query("absent", filters={"category": "llm"}, group_by=["user.id"])
    assert await world.samples(per_user) == {(("user.id", "user-gone"),): 1.0}
    # Twenty minutes on every service has gone silent; two days on, none was seen the day
    # before the window.
    later = NOW + timedelta(minutes=20)
    assert await world.samples(per_service, later) == {
        (("service", name),): 1.0 for name in ("api", "batch-worker", "gateway", "old-svc", "tools")
    }
    assert await world.samples(present, later) == {(): 1.0}
    assert await world.samples(per_service, NOW + timedelta(days=2)) == {}


async def test_empty_window(world) -> None:
    before = NOW - timedelta(hours=2)
    for path in ("spans", "rollups"):
        requests = {"category": "request"}
        assert await world.samples(rule_query("count", filters=requests), before, path) == {(): 0.0}
        assert await world.samples(rule_query("rate", filters=requests), before, path) == {(): 0.0}
        llm = {"category": "llm"}
        got = await world.samples(rule_query("sum", field="cost_usd", filters=llm), before, path)
        assert got == {(): 0.0}
        for name in ("error_rate", "p95", "avg"):
            assert await world.samples(rule_query(name, filters=requests), before, path) == {}
        grouped_count = rule_query("count", filters=requests, group_by=["service"])
        assert await world.samples(grouped_count, before, path) == {}
        absent = rule_query("absent", filters=requests)
        assert await world.samples(absent, before, path) == {(): 1.0}


async def test_rollups_count_the_minute_the_window_starts_in(world) -> None:
    # now - window = NOW - 4m40s: the raw path starts there, the rollups (like the
    # dashboards) at the minute it falls in, NOW - 5m, which holds the first two turns.
    later = NOW + timedelta(seconds=20)
    query = rule_query("count", filters={"category": "request", "service": "api"})
    assert await world.samples(query, later, "spans") == {(): 28.0}
    assert await world.samples(query, later, "rollups") == {(): 30.0}
    overview = await dashboard.overview(
        world.engine, world.project_id, window_s=WINDOW_S, service="api", now=later
    )
    assert overview["requests"] == 30


async def test_other_projects_never_count(world, other_client) -> None:
    await send(other_client, NOW)
    await send(other_client, NOW)  # twice as much there, in the same minutes
    for path in ("spans", "rollups"):
        got = await world.samples(rule_query("count", filters={"category": "request"}), source=path)
        assert got == {(): 33.0}
    assert await world.samples(rule_query("count")) == {(): float(len(world.spans(lambda _: True)))}
    per_service = await world.samples(rule_query("absent", group_by=["service"]))
    assert per_service == {(("service", "old-svc"),): 1.0}


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (rule_query("p95", window="1h", filters={"category": "llm"}), "category_minute_idx"),
        (
            rule_query("absent", filters={"category": "request"}, group_by=["service"]),
            "category_minute_idx",
        ),
        (
            rule_query("sum", field="cost_usd", window="1h", group_by=["user.id"]),
            "start_time",
        ),
        # Any (project, ..., start_time) index: since 0008 also (project, service, name,
        # start_time), whose name PostgreSQL truncates to ..._start_time_tra_idx.
        (rule_query("count", filters={"service": "api"}), "start_time"),
    ],
)
async def test_rule_queries_are_bounded_by_project_and_time(world, query, index) -> None:
    """Every statement a rule runs can use a (project, ..., time) index of each partition."""
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(world.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await world.samples(query)
    finally:
        event.remove(world.engine.sync_engine, "before_cursor_execute", capture)
    assert statements
    async with world.engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        for statement, parameters in statements:
            async with raw.transaction():
                await raw.execute("SET LOCAL enable_seqscan = off")
                rows = await raw.fetch(f"EXPLAIN {statement}", *parameters)
            plan = "\n".join(row[0] for row in rows)
            assert index in plan and "Index Cond: ((project_id = " in plan, plan
            assert "Seq Scan" not in plan, plan
