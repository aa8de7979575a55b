"""SLOs at a million spans: counting rounds, backfill and status reads.

Seeds 1,000,000 spans (bench/datagen.py, spread over the last 24 hours) through a
`serve --workers 2` collector whose own background jobs are off (so nothing else counts
meanwhile), creates 100 SLOs over the five services (availability and latency; requests,
model calls, tool executions, all spans; by name, model, tool), then measures in-process:
- the backfill of one SLO over its 24 hours of spans, then of all 100 in one round;
- the recount round (every SLO's last `slo_recount_window`), repeated;
and over HTTP, the status read of every SLO (median, p95) with the minute counts the
spans gave (24 hours of data in 30-day windows), after deleting all but the last 5 minutes
(the cost of a 5-minute window), and with every minute of 30 days filled (43,200 rows per
SLO), then of 90 days for ten 90-day SLOs.

    .venv/bin/python bench/slo.py [--spans 1000000] [--slos 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from common import ROOT, ScratchDatabase, seed_spans, server_url
from datagen import MODELS, TOOLS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import Collector

from app.auth import DEFAULT_PROJECT, ensure_project
from app.config import Settings
from app.db.engine import create_engine
from app.db.partitions import PartitionManager
from app.domain.durations import parse_duration_seconds
from app.domain.slos import parse_slo
from app.query.slos import cumulative_statement, status_times
from app.store.slos import create_slo
from app.workers.slo_counts import count_slos

DAY_S = 86400


def slo_bodies(count: int) -> list[dict[str, Any]]:
    """`count` SLOs cycling through templates over the generator's services."""
    templates: list[dict[str, Any]] = [
        {"service": "assistant-api", "sli": {"type": "availability"}},
        {"service": "assistant-api", "sli": {"type": "latency", "threshold_ms": 2000}},
        {"service": "planner", "sli": {"type": "availability", "filters": {"category": "all"}}},
        {
            "service": "retriever",
            "sli": {"type": "latency", "threshold_ms": 800, "filters": {"category": "all"}},
        },
    ]
    for _, model in MODELS:
        templates.append(
            {
                "service": "llm-gateway",
                "sli": {"type": "availability", "filters": {"category": "llm", "model": model}},
            }
        )
    for tool in TOOLS:
        templates.append(
            {
                "service": "tool-runner",
                "sli": {
                    "type": "latency",
                    "threshold_ms": 1000,
                    "filters": {"category": "tool", "tool": tool},
                },
            }
        )
    objectives = (99.9, 99.5, 99.0, 95.0, 90.0)
    windows = ("30d", "28d", "7d")
    return [
        {
            **templates[index % len(templates)],
            "name": f"slo-{index:03d}",
            "objective": objectives[index % len(objectives)],
            "window": windows[index % len(windows)],
        }
        for index in range(count)
    ]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[round(share * (len(ordered) - 1))]


def read_statuses(url: str, slo_ids: list[int], repeat: int) -> list[float]:
    samples = []
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get(f"/api/v1/slos/{slo_ids[0]}/status").raise_for_status()  # warm up
        for _ in range(repeat):
            for slo_id in slo_ids:
                started = time.perf_counter()
                client.get(f"/api/v1/slos/{slo_id}/status").raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
    return samples


async def database_ms(engine: AsyncEngine, slo_ids: list[int]) -> list[float]:
    """Planning + execution time inside PostgreSQL of each SLO's status statement."""
    samples = []
    async with engine.connect() as connection:
        for slo_id in slo_ids:
            window = await connection.scalar(
                text("SELECT spec->>'window' FROM slos WHERE id = :id"), {"id": slo_id}
            )
            end, starts = status_times(int(parse_duration_seconds(window)), datetime.now(UTC))
            statement, parameters = cumulative_statement(slo_id, [end, *starts.values()])
            explain = text("EXPLAIN (ANALYZE, FORMAT JSON) " + statement.text)
            (plan,) = (await connection.execute(explain, parameters)).scalar_one()
            samples.append(plan["Planning Time"] + plan["Execution Time"])
    return samples


async def measure(
    name: str, url: str, engine: AsyncEngine, slo_ids: list[int], repeat: int
) -> None:
    """HTTP status reads (client side), and the statement's time inside PostgreSQL."""
    http = read_statuses(url, slo_ids, repeat)
    inside = await database_ms(engine, slo_ids)
    print(
        f"{name:46} HTTP median {statistics.median(http):6.1f} ms, p95 "
        f"{percentile(http, 0.95):6.1f} ms; in PostgreSQL median "
        f"{statistics.median(inside):5.2f} ms, p95 {percentile(inside, 0.95):5.2f} ms"
    )


async def fill_all(database: ScratchDatabase, slo_ids: list[int], days: int) -> float:
    """Every minute of the last `days` days, for each SLO: the worst case of a window."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    engine = create_engine(Settings(), database.url, pool_size=2)
    await PartitionManager(engine).ensure(
        "slo_minutes", [(end - timedelta(days=n)).date() for n in range(days + 2)]
    )
    await engine.dispose()
    connection = await database.connect()
    started = time.perf_counter()
    await connection.execute(
        "INSERT INTO slo_minutes (slo_id, minute, good, total) "
        "SELECT s, m, 995, 1000 FROM unnest($1::bigint[]) AS s, "
        "generate_series($2::timestamptz - make_interval(days => $3), "
        "$2::timestamptz - interval '1 minute', interval '1 minute') AS m "
        "ON CONFLICT (slo_id, minute) DO UPDATE SET good = EXCLUDED.good, total = EXCLUDED.total",
        slo_ids,
        end,
        days,
    )
    await rebuild_hours(connection, slo_ids)
    await connection.close()
    return time.perf_counter() - started


async def rebuild_hours(connection: asyncpg.Connection, slo_ids: list[int]) -> None:
    """slo_hours from slo_minutes, as the worker keeps them, after writing minutes directly."""
    await connection.execute("DELETE FROM slo_hours WHERE slo_id = ANY($1::bigint[])", slo_ids)
    await connection.execute(
        "INSERT INTO slo_hours (slo_id, hour, good, total) "
        "SELECT slo_id, date_trunc('hour', minute, 'UTC'), sum(good), sum(total) "
        "FROM slo_minutes WHERE slo_id = ANY($1::bigint[]) GROUP BY 1, 2",
        slo_ids,
    )
    await connection.execute("VACUUM ANALYZE slo_minutes")
    await connection.execute("VACUUM ANALYZE slo_hours")


async def run(args: argparse.Namespace) -> None:
    server = server_url(args.database_url)
    settings = Settings()
    async with ScratchDatabase(server, keep=args.keep_database) as database:
        log_dir = ROOT / ".data" / "bench-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {"TELEMETRY_AUTH_ENABLED": "false", "TELEMETRY_WORKERS_ENABLED": "false"}
        collector = Collector(database.url, env=env, workers=2).start(log_dir)
        engine = create_engine(settings, database.url, pool_size=4)
        try:
            seconds = await seed_spans(collector.url, args.spans, args.clients, DAY_S)
            print(f"seeded {args.spans} spans in {seconds:.0f} s")
            connection = await database.connect()
            await connection.execute("VACUUM ANALYZE")
            await connection.close()
            project_id = await ensure_project(engine, DEFAULT_PROJECT)
            slo_ids = [
                (await create_slo(engine, project_id, parse_slo(body))).id
                for body in slo_bodies(args.slos)
            ]
            partitions = PartitionManager(engine)
            now = datetime.now(UTC)
            unbounded = {"force": True, "backfill_budget_s": 1e9}

            started = time.perf_counter()
            await count_slos(engine, settings, partitions, now, slo_ids=slo_ids[:1], **unbounded)
            print(f"backfill of one SLO (24 h of spans):  {time.perf_counter() - started:.2f} s")
            started = time.perf_counter()
            result = await count_slos(
                engine, settings, partitions, now, slo_ids=slo_ids, **unbounded
            )
            print(
                f"backfill of all {len(slo_ids)} SLOs in one round: "
                f"{time.perf_counter() - started:.2f} s ({result.backfill_chunks} chunks)"
            )
            rounds = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                await count_slos(engine, settings, partitions, slo_ids=slo_ids, force=True)
                rounds.append(time.perf_counter() - started)
            print(
                f"recount round ({len(slo_ids)} SLOs, last {settings.slo_recount_window}): "
                f"median {statistics.median(rounds):.2f} s, max {max(rounds):.2f} s"
            )
            connection = await database.connect()
            rows = await connection.fetchval("SELECT count(*) FROM slo_minutes")
            print(f"slo_minutes rows after counting: {rows}")

            await measure(
                "status, 24 h of counts (30d/28d/7d windows)",
                collector.url,
                engine,
                slo_ids,
                args.repeat,
            )
            await connection.execute(
                "DELETE FROM slo_minutes WHERE minute < now() - interval '5 minutes'"
            )
            await rebuild_hours(connection, slo_ids)
            await measure(
                "status, 5 minutes of counts", collector.url, engine, slo_ids, args.repeat
            )
            await connection.execute(
                "UPDATE slos SET spec = jsonb_set(spec, '{window}', '\"30d\"')"
            )
            filled = await fill_all(database, slo_ids, 30)
            rows = 30 * 1440 * len(slo_ids)
            print(f"filled 30 days x {len(slo_ids)} SLOs ({rows} minute rows) in {filled:.0f} s")
            await measure(
                "status, every minute of a 30d window", collector.url, engine, slo_ids, args.repeat
            )
            long_ids = slo_ids[:10]
            await connection.execute(
                "UPDATE slos SET spec = jsonb_set(spec, '{window}', '\"90d\"') "
                "WHERE id = ANY($1::bigint[])",
                long_ids,
            )
            await connection.close()
            await fill_all(database, long_ids, 90)
            await measure(
                "status, every minute of a 90d window (10 SLOs)",
                collector.url,
                engine,
                long_ids,
                args.repeat * 10,
            )
        finally:
            await engine.dispose()
            collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--slos", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="status reads per SLO")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
