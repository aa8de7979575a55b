"""Alert rule queries at a million spans: what one evaluation round of 1,000 rules costs.

Seeds spans through the ingest path of a `serve --workers 2` collector in two phases:
first `--recent` spans over the last 24 hours (plus metric points in the last minutes),
then the rest up to `--spans` over 4.5 days before yesterday, which no rule's window
or absent look-back reaches. After each phase (rollups compacted, VACUUM ANALYZE) it
times a few probe rules and counts the buffers their plans touch; the probes should cost
the same at both sizes, since a rule's cost follows its window, not what is retained.
Every rule is evaluated at the same `now`, the end of the generated data. Then it times
one round of the 1,000 rules of `bench_rules()` (realistic shapes, bodies for
`app.domain.alert_rules.parse_rule`) one after another on one connection, and reports
the median and p95 per shape and the total.

    .venv/bin/python bench/rule_queries.py [--spans 1000000] [--recent 100000] [--explain]

`bench_rules()` is importable (bench/ on sys.path) for a benchmark of the evaluator's round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common import ROOT, ScratchDatabase, post_all, server_url, start_collector
from datagen import MODELS, SERVICES, TOOLS, metric_batches, span_batches
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.config import Settings
from app.db.engine import create_engine
from app.domain.alert_rules import RuleSpec, parse_rule
from app.query.metric_samples import metric_samples
from app.query.span_samples import rollup_category, span_samples
from app.workers.rollups import compact_rollups

DAY_S = 86400
PROTOBUF = "application/x-protobuf"
SLICE = 100_000  # spans encoded at a time, so a million never sit in memory at once


def _rule(name: str, signal: str, query: dict[str, Any], op: str = ">", threshold: float = 0):
    body: dict[str, Any] = {"name": name, "signal": signal, "query": query}
    if query["aggregation"] != "absent":
        body["condition"] = {"op": op, "threshold": threshold}
    return body


# (shape, how many, a rule body for the n-th of them): 1,000 rules in all.
SHAPES: list[tuple[str, int, Callable[[int], dict[str, Any]]]] = [
    ("error rate per model, 5m", 150, lambda n: _rule(
        f"LLM errors {n}", "spans", {"aggregation": "error_rate", "window": "5m",
        "filters": {"category": "llm", "service": "llm-gateway"}, "group_by": ["model"]},
        threshold=0.05 + n / 10_000)),
    ("p95 of LLM calls per model, 5m", 100, lambda n: _rule(
        f"LLM p95 {n}", "spans", {"aggregation": "p95", "window": "5m",
        "filters": {"category": "llm", "provider": MODELS[n % 4][0]}, "group_by": ["model"]},
        threshold=1500 + n)),
    ("p95 of LLM calls, 1h", 100, lambda n: _rule(
        f"LLM p95 1h {n}", "spans", {"aggregation": "p95", "window": "1h",
        "filters": {"category": "llm", "model": MODELS[n % 4][1]}}, threshold=1800 + n)),
    ("token spend per hour per service", 100, lambda n: _rule(
        f"tokens {n}", "spans", {"aggregation": "sum", "field": "total_tokens", "window": "1h",
        "filters": {"category": "llm"}, "group_by": ["service"]}, threshold=1e6 + n)),
    ("cost per model, 1h", 50, lambda n: _rule(
        f"cost {n}", "spans", {"aggregation": "sum", "field": "cost_usd", "window": "1h",
        "filters": {"category": "llm"}, "group_by": ["model", "provider"]}, threshold=50 + n)),
    ("tool failures, 5m", 150, lambda n: _rule(
        f"tool failures {n}", "spans", {"aggregation": "error_count", "window": "5m",
        "filters": {"category": "tool"}, "group_by": ["tool"]}, threshold=3 + n % 5)),
    ("request error rate per service, 5m", 100, lambda n: _rule(
        f"request errors {n}", "spans", {"aggregation": "error_rate", "window": "5m",
        "filters": {"category": "request"}, "group_by": ["service"]}, threshold=0.02)),
    ("absent per service (requests), 10m", 50, lambda n: _rule(
        f"silent {n}", "spans", {"aggregation": "absent", "window": "10m",
        "filters": {"category": "request"}, "group_by": ["service"]})),
    ("cost per user, 1h (attributes, raw)", 50, lambda n: _rule(
        f"cost per user {n}", "spans", {"aggregation": "sum", "field": "cost_usd",
        "window": "1h", "filters": {"category": "llm"}, "group_by": ["user.id"]},
        threshold=5)),
    ("slow tool runs of one tool, 5m (raw)", 50, lambda n: _rule(
        f"slow {n}", "spans", {"aggregation": "p99", "window": "5m",
        "filters": {"service": "tool-runner", "name": f"execute_tool {TOOLS[n % 5]}"}},
        threshold=1900)),
    ("absent of one service, 10m (raw)", 50, lambda n: _rule(
        f"silent service {n}", "spans", {"aggregation": "absent", "window": "10m",
        "filters": {"service": SERVICES[n % 5]}})),
    ("attribute filter count, 15m (raw)", 25, lambda n: _rule(
        f"cache misses {n}", "spans", {"aggregation": "count", "window": "15m",
        "filters": {"service": "retriever", "attributes": {"cache.hit": False}}},
        threshold=100 + n)),
    ("metric: token usage rate per model, 5m", 10, lambda n: _rule(
        f"token rate {n}", "metrics", {"aggregation": "rate", "window": "5m",
        "metric": "gen_ai.client.token.usage", "group_by": ["gen_ai.request.model"]},
        threshold=1000 + n)),
    ("metric: p95 operation duration, 5m", 5, lambda n: _rule(
        f"duration p95 {n}", "metrics", {"aggregation": "p95", "window": "5m",
        "metric": "gen_ai.client.operation.duration",
        "filters": {"service": SERVICES[n % 5]}}, threshold=2000)),
    ("metric: max queue depth per service, 5m", 5, lambda n: _rule(
        f"queue {n}", "metrics", {"aggregation": "max", "window": "5m",
        "metric": "assistant.queue.depth", "group_by": ["service.name"]}, threshold=500)),
    ("metric: absent per service, 10m", 5, lambda n: _rule(
        f"metrics gone {n}", "metrics", {"aggregation": "absent", "window": "10m",
        "metric": "assistant.queue.depth", "group_by": ["service.name"]})),
]  # fmt: skip
# Probes timed at both sizes: same window, more data retained. The last is not in the
# round: absent per group over all spans reads the window and the day before it.
PROBES = (
    "error rate per model, 5m",
    "p95 of LLM calls, 1h",
    "cost per user, 1h (attributes, raw)",
    "absent of one service, 10m (raw)",
    "absent per service (requests), 10m",
)
DAY_SCAN = (
    "absent per service, all spans (raw, 24 h)",
    _rule("silent anything", "spans", {"aggregation": "absent", "window": "10m",
          "group_by": ["service"]}),
)  # fmt: skip


def bench_rules() -> list[dict[str, Any]]:
    """The 1,000 rule bodies of the round, in shape order (each accepted by parse_rule)."""
    return [make(n) for _, count, make in SHAPES for n in range(count)]


def _shape_of(index: int) -> str:
    for shape, count, _ in SHAPES:
        if index < count:
            return shape
        index -= count
    raise IndexError(index)


async def evaluate(
    connection: AsyncConnection, project_id: int, spec: RuleSpec, now: datetime
) -> int:
    """One rule's query, as the evaluator will run it; the number of samples."""
    if spec.signal == "metrics":
        return len(await metric_samples(connection, project_id, spec.query, now))
    return len(await span_samples(connection, project_id, spec.query, now))


async def time_rules(
    engine: AsyncEngine,
    project_id: int,
    specs: list[tuple[str, RuleSpec]],
    now: datetime,
    repeat: int = 1,
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    async with engine.connect() as connection:
        for _ in range(repeat):
            for shape, spec in specs:
                started = time.perf_counter()
                await evaluate(connection, project_id, spec, now)
                times.setdefault(shape, []).append((time.perf_counter() - started) * 1000)
    return times


async def plans(
    engine: AsyncEngine, project_id: int, spec: RuleSpec, now: datetime
) -> list[tuple[str, list[str]]]:
    """(statement, EXPLAIN (ANALYZE, BUFFERS) lines) of every statement the rule runs."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with engine.connect() as connection:
            await evaluate(connection, project_id, spec, now)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    found = []
    async with engine.connect() as connection:
        raw = (await connection.get_raw_connection()).driver_connection
        for statement, parameters in captured:
            rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
            found.append((statement, [row[0] for row in rows]))
    return found


async def buffers(engine: AsyncEngine, project_id: int, spec: RuleSpec, now: datetime) -> int:
    """Shared buffers (hit + read) the rule's statements touch: its I/O, free of noise."""
    total = 0
    for _, lines in await plans(engine, project_id, spec, now):
        top = next((line for line in lines if "Buffers: shared" in line), "")
        total += sum(int(n) for n in re.findall(r"(?:hit|read)=(\d+)", top))
    return total


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[round(0.95 * (len(ordered) - 1))]


async def seed_spans(
    url: str, total: int, end_ns: int, spread_s: float, clients: int, seed: int
) -> float:
    started = time.perf_counter()
    for offset in range(0, total, SLICE):
        bodies = [
            request.SerializeToString()
            for request in span_batches(
                min(SLICE, total - offset), 512, seed=seed + offset, end_ns=end_ns,
                spread_s=spread_s, user_on_calls=True,
            )
        ]  # fmt: skip
        _, failures = await post_all(f"{url}/v1/traces", bodies, clients, PROTOBUF)
        assert failures == 0, f"{failures} span batches failed"
    return time.perf_counter() - started


async def settle(engine: AsyncEngine, database: ScratchDatabase) -> dict[str, int]:
    """Compact the rollups as the worker would, VACUUM ANALYZE; the table sizes."""
    await compact_rollups(engine, max_minutes=1_000_000)
    connection = await database.connect()
    await connection.execute("VACUUM ANALYZE")
    sizes = await connection.fetchrow(
        "SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM span_rollups) "
        "AS rollups, (SELECT count(*) FROM metric_points) AS metric_points"
    )
    await connection.close()
    return dict(sizes)


@dataclass
class Probe:
    """A probe's times (ms) and buffers at one size."""

    times: dict[str, list[float]]
    buffers: dict[str, int]


async def probe(
    engine: AsyncEngine,
    project_id: int,
    probes: list[tuple[str, RuleSpec]],
    now: datetime,
    repeat: int,
) -> Probe:
    times = await time_rules(engine, project_id, probes, now, repeat)
    return Probe(
        times, {shape: await buffers(engine, project_id, spec, now) for shape, spec in probes}
    )


async def run(args: argparse.Namespace) -> None:
    rules = [(_shape_of(index), parse_rule(body)) for index, body in enumerate(bench_rules())]
    probes = [next((s, spec) for s, spec in rules if s == shape) for shape in PROBES]
    probes.append((DAY_SCAN[0], parse_rule(DAY_SCAN[1])))
    server = server_url(args.database_url)
    async with ScratchDatabase(server, keep=args.keep_database) as database:
        collector = start_collector(database.url, 2, ROOT / ".data" / "bench-logs")
        engine = create_engine(Settings(), database.url, pool_size=2)
        try:
            # Every rule is evaluated at `now`, the end of the generated data, however long
            # seeding takes: the windows hold the same data in both phases.
            now_ns = time.time_ns()
            now = datetime.fromtimestamp(now_ns / 1e9, tz=UTC)
            seconds = await seed_spans(collector.url, args.recent, now_ns, DAY_S, args.clients, 1)
            metrics = [
                request.SerializeToString()
                for request in metric_batches(args.metric_points, 512, end_ns=now_ns + 3480 * 10**9)
            ]
            _, failures = await post_all(f"{collector.url}/v1/metrics", metrics, 4, PROTOBUF)
            assert failures == 0
            print(f"seeded {args.recent} recent spans in {seconds:.0f} s; "
                  f"rows: {await settle(engine, database)}")  # fmt: skip
            project_id = await _project_id(database)
            small = await probe(engine, project_id, probes, now, args.repeat)
            older = args.spans - args.recent
            # The older spans end where yesterday's day partition starts: no window and no
            # absent look-back reaches them, and pruning skips their partitions.
            yesterday = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
            end = int(yesterday.timestamp()) * 10**9
            seconds = await seed_spans(
                collector.url, older, end, 4.5 * DAY_S, args.clients, 10_000_000
            )
            print(f"seeded {older} older spans in {seconds:.0f} s; "
                  f"rows: {await settle(engine, database)}")  # fmt: skip
            large = await probe(engine, project_id, probes, now, args.repeat)
            await time_rules(engine, project_id, rules, now)  # warm caches, as a running server is
            started = time.perf_counter()
            round_times = await time_rules(engine, project_id, rules, now)
            total_s = time.perf_counter() - started
            if args.explain:
                await explain(engine, project_id, rules, now)
        finally:
            await engine.dispose()
            collector.stop()
    report(small, large, round_times, total_s, args)


def report(
    small: Probe, large: Probe, round_times: dict[str, list[float]], total_s: float, args: Any
) -> None:
    print(f"\nprobes: ms median / min of {args.repeat} runs, and shared buffers touched")
    print(f"{'rule':42} {args.recent:>20,} spans {args.spans:>20,} spans")
    for shape in small.times:
        a, b = small.times[shape], large.times[shape]
        print(f"{shape:42} {statistics.median(a):7.2f} / {min(a):6.2f} {small.buffers[shape]:7} "
              f"{statistics.median(b):12.2f} / {min(b):6.2f} {large.buffers[shape]:7}")  # fmt: skip
    print(f"\none round of {sum(len(t) for t in round_times.values())} rules, ms per rule")
    print(f"{'shape':42} {'rules':>5} {'path':>8} {'median':>8} {'p95':>8} {'sum':>8}")
    rules = {shape: parse_rule(make(0)) for shape, _, make in SHAPES}
    for shape, samples in round_times.items():
        spec = rules[shape]
        path = "metrics" if spec.signal == "metrics" else (
            "rollups" if rollup_category(spec.query) is not None else "spans")  # fmt: skip
        print(f"{shape:42} {len(samples):5} {path:>8} {statistics.median(samples):8.2f} "
              f"{_p95(samples):8.2f} {sum(samples):8.0f}")  # fmt: skip
    print(f"total: {total_s:.2f} s for the round; load average {os.getloadavg()}")


async def _project_id(database: ScratchDatabase) -> int:
    connection = await database.connect()
    project_id = await connection.fetchval("SELECT id FROM projects WHERE name = 'default'")
    await connection.close()
    return int(project_id)


async def explain(
    engine: AsyncEngine, project_id: int, rules: list[tuple[str, RuleSpec]], now: datetime
) -> None:
    """Print the plans of one rule per shape."""
    seen: set[str] = set()
    for shape, spec in rules:
        if shape not in seen:
            seen.add(shape)
            print(f"\n### {shape}")
            for statement, lines in await plans(engine, project_id, spec, now):
                print(f"\n{statement}\n" + "\n".join(f"    {line}" for line in lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--recent", type=int, default=100_000, help="spans in the last 24 h")
    parser.add_argument("--metric-points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20, help="runs of each probe")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--explain", action="store_true", help="print the plans of each shape")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
