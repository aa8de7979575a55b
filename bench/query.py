"""Query latency as an operator meets it: seeded over OTLP, queried at once, then again.

Seeds `--spans` spans (default 1,000,000; 8-30 per trace, 5 services, 4 models, 3%
errors, spread over the last 24 hours) and `--logs` logs through the real ingest path:
protobuf OTLP over HTTP from `--clients` concurrent clients to a `serve --workers 2`
collector. Then it measures every query twice:

1. fresh: right after the last span was acknowledged, nothing waited for (rollup
   compaction, autovacuum and ANALYZE have not caught up);
2. settled: once the collector's own background jobs compacted every settled rollup
   minute (and at least --settle-s seconds passed, for autovacuum's ANALYZE).

It prints the median and p95 of `--repeat` calls per query (client-side: HTTP and JSON
included). `--spans 10000000` is the scale run (docs/benchmarks.md). With --explain,
PostgreSQL's auto_explain writes the plan of every query the collector runs (ANALYZE,
BUFFERS) to the server log.

    .venv/bin/python bench/query.py [--spans 1000000] [--logs 200000] [--repeat 25]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

import asyncpg
import httpx
from common import ROOT, ScratchDatabase, post_all, seed_spans, server_url, start_collector
from datagen import log_batches

DAY_S = 86400
PROTOBUF = "application/x-protobuf"
# The planner's spans last 5..2000 ms (uniform): at >= 1996 ms about 1% of its traces hold one.
RARE_DURATION_MS = 1996
TARGETS_MS = {
    "trace by id": 30,
    "search: service + min duration (1% of traces), 24h": 100,
    "search: service + min duration (1% of traces), 1h": 100,
    "search: service + status=error, 24h": 100,
    "search: attribute equality (one user), 24h": 100,
    "log full-text search (24h)": 200,
    "dashboard overview (24h)": 200,
    "dashboard llm (24h)": 500,
    "services and operations (1h)": 100,
    "services and operations (24h)": 100,
}


async def seed(url: str, spans: int, logs: int, clients: int) -> tuple[float, float]:
    span_seconds = await seed_spans(url, spans, clients, DAY_S)
    started = time.perf_counter()
    bodies = [
        request.SerializeToString()
        for request in log_batches(logs, 512, seed=3, end_ns=time.time_ns(), spread_s=DAY_S)
    ]
    _, failures = await post_all(f"{url}/v1/logs", bodies, clients, PROTOBUF)
    assert failures == 0, f"{failures} log batches failed"
    return span_seconds, time.perf_counter() - started


FAILED: dict[str, int] = {}


def timed(
    client: httpx.Client, path: str, params: dict, repeat: int, name: str = ""
) -> list[float]:
    """Client-side milliseconds of `repeat` calls; a failed call (e.g. 503 when PostgreSQL
    cancelled a statement at its timeout) counts with its time and is reported."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, params=params)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            FAILED[name or path] = FAILED.get(name or path, 0) + 1
    return samples


def measure(url: str, trace_ids: list[str], repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=120) as client:
        samples = []
        for trace_id in trace_ids:
            started = time.perf_counter()
            if client.get(f"/api/v1/traces/{trace_id}").status_code != 200:
                FAILED["trace by id"] = FAILED.get("trace by id", 0) + 1
            samples.append((time.perf_counter() - started) * 1000)
        results["trace by id"] = samples
        rare = {"service": "planner", "min_duration_ms": RARE_DURATION_MS, "limit": 20}
        results["search: service + min duration (1% of traces), 24h"] = timed(
            client,
            "/api/v1/traces",
            {**rare, "start": "now-24h"},
            repeat,
            "search: service + min duration (1% of traces), 24h",
        )
        results["search: service + min duration (1% of traces), 1h"] = timed(
            client,
            "/api/v1/traces",
            rare,
            repeat,
            "search: service + min duration (1% of traces), 1h",
        )
        errors = {"service": "planner", "status": "error", "limit": 20, "start": "now-24h"}
        results["search: service + status=error, 24h"] = timed(
            client, "/api/v1/traces", errors, repeat, "search: service + status=error, 24h"
        )
        user = {"attr.user.id": "user-77", "limit": 20, "start": "now-24h"}
        results["search: attribute equality (one user), 24h"] = timed(
            client, "/api/v1/traces", user, repeat, "search: attribute equality (one user), 24h"
        )
        words = random.Random(1).choice(["rate limit", '"context window"', "timeout"])
        results["log full-text search (24h)"] = timed(
            client,
            "/api/v1/logs",
            {"q": words, "start": "now-24h", "limit": 50},
            repeat,
            "log full-text search (24h)",
        )
        results["dashboard overview (24h)"] = timed(
            client,
            "/api/v1/dashboard/overview",
            {"window": "24h"},
            repeat,
            "dashboard overview (24h)",
        )
        results["dashboard llm (24h)"] = timed(
            client, "/api/v1/dashboard/llm", {"window": "24h"}, repeat, "dashboard llm (24h)"
        )
        results["services and operations (1h)"] = timed(
            client, "/api/v1/services", {}, repeat, "services and operations (1h)"
        )
        results["services and operations (24h)"] = timed(
            client,
            "/api/v1/services",
            {"start": "now-24h"},
            repeat,
            "services and operations (24h)",
        )
    return results


def report(title: str, results: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"{'query':55} {'median ms':>10} {'p95 ms':>8} {'target':>7}")
    for name, samples in results.items():
        ordered = sorted(samples)
        p95 = ordered[round(0.95 * (len(ordered) - 1))]
        median = statistics.median(samples)
        target = TARGETS_MS[name]
        verdict = "ok" if median < target else "OVER"
        failed = f"  ({FAILED[name]} failed)" if name in FAILED else ""
        print(f"{name:55} {median:10.1f} {p95:8.1f} {target:7} {verdict}{failed}")
    FAILED.clear()


async def uncompacted(connection: asyncpg.Connection) -> int:
    return await connection.fetchval(
        "SELECT count(*) FROM span_rollups WHERE NOT compacted"
        " AND minute < now() - interval '2 minutes'"
    )


async def settle(connection: asyncpg.Connection, not_before: float) -> None:
    """Wait until `not_before` (monotonic) and until compaction has caught up."""
    await asyncio.sleep(max(0.0, not_before - time.monotonic()))
    for _ in range(360):
        if not await uncompacted(connection):
            return
        await asyncio.sleep(5)


async def run(args: argparse.Namespace) -> None:
    server = server_url(args.database_url)
    async with ScratchDatabase(server, keep=args.keep_database) as database:
        if args.explain:
            admin = await database.connect()
            await admin.execute(
                f"ALTER DATABASE \"{database.name}\" SET session_preload_libraries = 'auto_explain'"
            )
            for setting in ("log_min_duration = 0", "log_analyze = on", "log_buffers = on"):
                await admin.execute(f'ALTER DATABASE "{database.name}" SET auto_explain.{setting}')
            await admin.close()
        collector = start_collector(database.url, 2, ROOT / ".data" / "bench-logs")
        try:
            span_s, log_s = await seed(collector.url, args.spans, args.logs, args.clients)
            seeded_at = time.monotonic()
            print(
                f"seeded {args.spans} spans in {span_s:.0f} s ({args.spans / span_s:.0f}/s), "
                f"{args.logs} logs in {log_s:.0f} s"
            )
            connection = await database.connect()
            trace_ids = [
                row["trace_id"].hex()
                for row in await connection.fetch(
                    "SELECT trace_id FROM spans TABLESAMPLE SYSTEM (1) WHERE is_root LIMIT $1",
                    args.repeat,
                )
            ]
            print(f"uncompacted settled rollup rows: {await uncompacted(connection)}")
            fresh = measure(collector.url, trace_ids, args.repeat)
            report("fresh: right after seeding", fresh)
            await settle(connection, seeded_at + args.settle_s)
            sizes = await connection.fetchrow(
                "SELECT (SELECT count(*) FROM spans) AS spans, (SELECT count(*) FROM logs) AS logs,"
                " (SELECT count(*) FROM span_rollups) AS rollups"
            )
            print(
                f"\nworkers caught up {time.monotonic() - seeded_at:.0f} s after seeding; "
                f"rows: {dict(sizes)}"
            )
            await connection.close()
            settled = measure(collector.url, trace_ids, args.repeat)
            report("settled: after the background jobs caught up", settled)
        finally:
            collector.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--settle-s", type=float, default=90, help="wait at least this long before round two"
    )
    parser.add_argument("--explain", action="store_true")
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the seeded database for EXPLAIN"
    )
    parser.add_argument("--database-url", default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
