"""Ingest throughput of the collector against raw asyncpg COPY of the same rows, same run.

Starts `telemetry-collector serve --workers 2` on a scratch database and, per signal,
posts protobuf batches from concurrent clients (`--protocol grpc`: the same batches as
OTLP/gRPC Export calls on the gRPC port), then COPYs the identical rows into a
scratch table of the same database (same indexes) from as many connections. Prints
items/s for both and their ratio; the ratio is what to compare across machines, since
both sides run on the same noisy machine in the same minute (docs/benchmarks.md). Also
prints the CPU each side spent per item, read from /proc (the collector's processes, its
PostgreSQL backends when the server is local, this process's HTTP clients; raw COPY's
backends and client): on a machine other work keeps busy, their inverse ratio is steadier
than the throughput ratio.

    .venv/bin/python bench/ingest.py [--spans 100000] [--logs 100000] [--points 100000]
        [--protocol http|grpc]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
from common import (
    ROOT,
    Collector,
    ScratchDatabase,
    backend_cpu,
    backend_names,
    cpu_by_name,
    export_all,
    post_all,
    raw_copy,
    server_url,
    start_collector,
)
from datagen import log_batches, metric_batches, span_batches
from loadgen import cpu_seconds, process_tree

from app.db.tables import LOG_COLUMNS, METRIC_POINT_COLUMNS, SPAN_COLUMNS
from app.ingest.log_rows import log_rows
from app.ingest.otlp_common import DecodeLimits
from app.ingest.otlp_logs import decode_logs_protobuf
from app.ingest.otlp_traces import decode_traces_protobuf
from app.ingest.rows import span_rows
from app.workers.partition_stats import MAINTAINED_TABLES, MIN_ROWS

DAY_NS = 86400 * 10**9
PROTOBUF = "application/x-protobuf"


@dataclass
class Signal:
    name: str
    path: str
    grpc_method: str
    table: str
    columns: tuple[str, ...]
    batches: Callable[[int, int, int], Iterable[Any]]
    rows: Callable[[bytes, DecodeLimits], list[tuple]]


def _span_rows(body: bytes, limits: DecodeLimits) -> list[tuple]:
    return span_rows(1, decode_traces_protobuf(body, limits).items).rows


def _log_rows(body: bytes, limits: DecodeLimits) -> list[tuple]:
    return log_rows(1, decode_logs_protobuf(body, limits).items).rows


def _point_rows(body: bytes, limits: DecodeLimits) -> list[tuple]:
    from app.domain.metrics import series_id_of
    from app.ingest.metric_rows import metric_point_rows
    from app.ingest.otlp_metrics import decode_metrics_protobuf

    points = decode_metrics_protobuf(body, limits).items
    for point in points:
        # The collector registers series first; the baseline only needs their ids.
        point.series_id = series_id_of(point.stream, point.attributes)
    return metric_point_rows(1, points).rows


SIGNALS = {
    "spans": Signal(
        "spans",
        "/v1/traces",
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        "spans",
        SPAN_COLUMNS,
        span_batches,
        _span_rows,
    ),
    "logs": Signal(
        "logs",
        "/v1/logs",
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        "logs",
        LOG_COLUMNS,
        log_batches,
        _log_rows,
    ),
    "points": Signal(
        "points",
        "/v1/metrics",
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "metric_points",
        METRIC_POINT_COLUMNS,
        metric_batches,
        _point_rows,
    ),
}


@dataclass
class Result:
    ingest_rate: float
    copy_rate: float
    stored: int
    failures: int
    # CPU microseconds per item: the collector's processes, PostgreSQL's backends and this
    # process (the HTTP clients), then raw COPY's backends and client.
    ingest_cpu: tuple[float, float, float]
    copy_cpu: tuple[float, float]
    # The collector's PostgreSQL CPU per item by connection name: its writer, its pool
    # for queries and background jobs (rollup compaction, ANALYZE of filling partitions).
    postgres_by_name: dict[str, float]


async def send_all(
    collector: Collector, signal: Signal, bodies: list[bytes], args: argparse.Namespace
) -> tuple[float, int]:
    if args.protocol == "grpc":
        return await export_all(collector.grpc_target, signal.grpc_method, bodies, args.clients)
    return await post_all(f"{collector.url}{signal.path}", bodies, args.clients, PROTOBUF)


async def first_analyze(connection: asyncpg.Connection, table: str, within_s: float = 20) -> None:
    """Until the partition-maintenance job has analyzed the partitions the warmup filled.

    A day partition's first ANALYZE (about a second of PostgreSQL CPU for a sample of
    30,000 spans) comes once per partition and day, then at most once a minute
    (app/workers/partition_stats.py); waiting for it keeps that one-off out of a window of
    a few seconds, which it would otherwise dominate. Tables the job does not maintain
    (metric points) are not waited for.
    """
    if table not in MAINTAINED_TABLES:
        return
    # The partitions holding rows, counted (the statistics views lag a second or so).
    # The table name comes from SIGNALS, never from input.
    filled = await connection.fetch(
        f'SELECT tableoid FROM "{table}" GROUP BY tableoid HAVING count(*) >= $1',  # noqa: S608
        MIN_ROWS,
    )
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relid = ANY($1::oid[])"
            " AND last_analyze IS NULL AND last_autoanalyze IS NULL",
            [row["tableoid"] for row in filled],
        )
        if not waiting:
            return
        await asyncio.sleep(0.2)
    print(f"note: {table}'s partitions were not analyzed within {within_s:.0f} s")


async def measure(
    database: ScratchDatabase,
    collector: Collector,
    signal: Signal,
    total: int,
    args: argparse.Namespace,
) -> Result:
    batches = signal.batches
    if signal.name in ("spans", "logs"):
        batches = functools.partial(batches, spread_s=args.spread_s)
    bodies = [request.SerializeToString() for request in batches(total, args.batch, 11)]
    warmup = [request.SerializeToString() for request in batches(1024, args.batch, 3)]
    await send_all(collector, signal, warmup, args)
    connection = await database.connect()
    await first_analyze(connection, signal.table)
    # The table name comes from SIGNALS above, never from input.
    count_rows = f'SELECT count(*) FROM "{signal.table}"'  # noqa: S608
    before = await connection.fetchval(count_rows)
    processes = process_tree(collector.process.pid)
    collector_cpu, backends, own = (
        cpu_seconds(processes),
        backend_cpu(database.name),
        time.process_time(),
    )
    names = await backend_names(connection)
    seconds, failures = await send_all(collector, signal, bodies, args)
    collector_cpu = cpu_seconds(processes) - collector_cpu
    backends_after = backend_cpu(database.name)
    own = time.process_time() - own
    # One reading of /proc for both the total and its split by pool.
    names |= await backend_names(connection)
    by_name = cpu_by_name(backends, backends_after, names)
    postgres_cpu = sum(by_name.values())
    stored = await connection.fetchval(count_rows) - before
    await connection.close()
    now = time.time_ns()
    limits = DecodeLimits(now - 7 * DAY_NS, now + DAY_NS)
    chunks = [signal.rows(body, limits) for body in bodies]
    copied = sum(len(chunk) for chunk in chunks)
    copy_cpu: dict[str, float] = {}
    copy_seconds = await raw_copy(
        database, signal.table, signal.columns, chunks, args.clients, copy_cpu
    )
    per_item = 1e6 / copied
    return Result(
        copied / seconds,
        copied / copy_seconds,
        stored,
        failures,
        (collector_cpu * per_item, postgres_cpu * per_item, own * per_item),
        (copy_cpu["postgres"] * per_item, copy_cpu["client"] * per_item),
        {name: cpu * per_item for name, cpu in by_name.items()},
    )


async def run(args: argparse.Namespace) -> None:
    server = server_url(args.database_url)
    totals = {"spans": args.spans, "logs": args.logs, "points": args.points}
    async with ScratchDatabase(server) as database:
        collector = start_collector(database.url, args.workers, ROOT / ".data" / "bench-logs")
        try:
            results = {}
            for name, total in totals.items():
                if total:
                    results[name] = await measure(database, collector, SIGNALS[name], total, args)
        finally:
            collector.stop()
    print(
        f"OTLP/{args.protocol}, batches of {args.batch}, {args.clients} clients, "
        f"{args.workers} collector workers"
    )
    for name, result in results.items():
        print(
            f"{name:>6}: collector {result.ingest_rate:9.0f}/s   raw COPY {result.copy_rate:9.0f}/s"
            f"   ratio {result.ingest_rate / result.copy_rate:.2f}   "
            f"(stored {result.stored}, refused {result.failures})"
        )
    # On a machine that other work shares, each side's throughput depends on what the other
    # work left it that minute; the CPU each side spent per item does much less. Both sides
    # keep every core busy, so on an idle machine their throughput ratio is about the inverse
    # ratio of their total CPU per item.
    print("CPU us per item (collector + PostgreSQL + HTTP clients | raw COPY: PostgreSQL + client)")
    for name, result in results.items():
        collector_cpu, postgres_cpu, client_cpu = result.ingest_cpu
        copy_postgres, copy_client = result.copy_cpu
        ingest_total = sum(result.ingest_cpu)
        copy_total = copy_postgres + copy_client
        print(
            f"{name:>6}: {collector_cpu:5.1f} + {postgres_cpu:5.1f} + {client_cpu:4.1f} = "
            f"{ingest_total:5.1f}   | {copy_postgres:5.1f} + {copy_client:4.1f} = {copy_total:5.1f}"
            f"   CPU ratio {copy_total / ingest_total:.2f}"
        )
        spent = ", ".join(
            f"{name.removeprefix('telemetry-collector') or '(queries and jobs)'} {cpu:.1f}"
            for name, cpu in sorted(result.postgres_by_name.items(), key=lambda item: -item[1])
            if cpu >= 0.05
        )
        print(f"        PostgreSQL us per item by connection: {spent}")
    print("target: ratio >= 0.5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument(
        "--spread-s",
        type=float,
        default=3600.0,
        help="spans and logs start within the last SPREAD_S seconds (default: an hour, "
        "a backfill; 60 is live traffic, whose rollup and catalog rows per flush are few)",
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
